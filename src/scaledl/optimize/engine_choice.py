"""Which engine runs the chosen graph fastest on this machine, with the promise still kept.

The chosen candidate's graph is timed under every installed engine side by side (interleaved
rounds, the same input, the same threads). Another engine than ONNX Runtime wins only when it
is faster by more than the tie tolerance, its outputs on the validation rows are scored like
any candidate's and its paired drop's upper bound still meets the accuracy budget; the largest
difference from ONNX Runtime's outputs is recorded, and `serve` checks it again at load.
"""

from __future__ import annotations

import logging
from typing import Any

from scaledl.bench.latency import LatencyStats, interleaved_rounds
from scaledl.export.engines import (
    ONNXRUNTIME,
    available_engines,
    engine_session,
    max_difference,
)
from scaledl.optimize.budget import SECONDS_PER_ROUND
from scaledl.optimize.candidate import Candidate
from scaledl.optimize.context import SearchContext
from scaledl.optimize.evaluation import judge_outputs, make_session, run
from scaledl.optimize.frontier import Constraints

log = logging.getLogger(__name__)


def choose_engine(
    chosen: Candidate, parent: Candidate, ctx: SearchContext, cons: Constraints, tie: float
) -> dict[str, Any]:
    """Time the graph under each installed engine; returns what `manifest.runtime` records."""
    assert chosen.onnx is not None
    threads = ctx.config.threads
    reference = make_session(chosen, threads)
    sessions, notes = {ONNXRUNTIME: reference}, []
    for engine in available_engines()[1:]:
        try:
            sessions[engine] = engine_session(engine, chosen.onnx, reference, threads)
        except Exception as exc:  # an engine that cannot compile this graph is left out
            notes.append(f"{engine} cannot run this graph: {type(exc).__name__}: {exc}"[:300])
    record: dict[str, Any] = {"engine": ONNXRUNTIME, "cpu": ctx.cpu.summary(), "notes": notes}
    if len(sessions) == 1:
        record["notes"].append("only ONNX Runtime can run it here")
        return record
    x = ctx.latency_input()
    name = reference.get_inputs()[0].name
    calls = {engine: (lambda s=s: s.run(None, {name: x})) for engine, s in sessions.items()}
    rounds = ctx.config.final_rounds
    timed = interleaved_rounds(calls, rounds=rounds, seconds_per_round=SECONDS_PER_ROUND)
    p25 = {
        e: LatencyStats.from_rounds(parts, ctx.config.batch_size).p25_ms
        for e, parts in timed.items()
    }
    record["p25_ms"] = {engine: round(ms, 6) for engine, ms in p25.items()}
    ort_outputs = run(reference, ctx.x_val)
    best = ONNXRUNTIME
    for engine, session in sessions.items():
        if engine == ONNXRUNTIME:
            continue
        outputs = run(session, ctx.x_val)
        drop = judge_outputs(outputs, parent, ctx)
        difference = max_difference([outputs], [ort_outputs])
        record[engine] = {"max_abs_diff": difference, "drop": drop.to_json()}
        keeps = drop.upper <= cons.max_drop + 1e-9
        if keeps and p25[engine] * (1.0 + tie) < p25[best]:
            best = engine
        elif not keeps:
            change = drop.text("pt" if cons.budget == "accuracy" else "%")
            notes.append(f"{engine} changes the outputs: {change} breaks the budget")
    record["engine"] = best
    log.info("engine for %s: %s (p25 ms %s)", chosen.id, best, record["p25_ms"])
    return record
