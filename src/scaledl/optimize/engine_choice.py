"""Which engine runs the chosen graph fastest on this machine, with the promise still kept.

The chosen candidate's graph is timed under every installed engine side by side (interleaved
rounds, the same input, the same threads). Another engine than ONNX Runtime wins only when it
is faster by more than the tie tolerance and the promise still holds: an engine that gives
every validation row ONNX Runtime's answer keeps the graph's own bound, one that changes any
is scored like a candidate of its own against the parent. The largest difference from ONNX
Runtime's outputs is recorded, and `serve` checks it again at load.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

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
from scaledl.optimize.paired import DropEstimate, row_scores

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
        drop = _engine_drop(outputs, ort_outputs, chosen, parent, ctx)
        difference = max_difference([outputs], [ort_outputs])
        record[engine] = {"max_abs_diff": difference, "drop": drop.to_json()}
        keeps = drop.upper <= cons.limit + 1e-9
        if keeps and p25[engine] * (1.0 + tie) < p25[best]:
            best = engine
        elif not keeps:
            change = drop.text("pt" if cons.budget == "accuracy" else "%")
            notes.append(f"{engine} changes the outputs: {change} breaks the budget")
    record["engine"] = best
    log.info("engine for %s: %s (p25 ms %s)", chosen.id, best, record["p25_ms"])
    return record


def _engine_drop(
    outputs: np.ndarray,
    ort_outputs: np.ndarray,
    chosen: Candidate,
    parent: Candidate,
    ctx: SearchContext,
) -> DropEstimate:
    """The drop of the chosen graph run by another engine. When the engine gives every
    validation row the same answer as ONNX Runtime, it is the same model on the evidence, and
    the graph's own bound stands (cross-fitted, it speaks of far more rows than the validation
    split). An engine that changes any answer is judged on its own against the parent; on 179
    rows that bound cannot fall below 1.28 pt, which judging every engine afresh made of an
    unchanged OpenVINO graph."""
    if chosen.drop is not None:
        y = ctx.splits.val.y
        same = row_scores(outputs, y, ctx.task, ctx.error_scale)
        if np.array_equal(same, row_scores(ort_outputs, y, ctx.task, ctx.error_scale)):
            return chosen.drop
    return judge_outputs(outputs, parent, ctx)
