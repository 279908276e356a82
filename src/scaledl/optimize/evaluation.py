"""Scoring a candidate the way it will be served: its ONNX graph in ONNX Runtime.

Accuracy comes from running the graph on the validation split (the test split only for the final
report), kept per row so that each candidate is compared with its parent on the same rows;
latency from timing the graph at the requested batch size with fixed threads on this machine.
Nothing is estimated from MACs.
"""

from __future__ import annotations

import copy
import time
import zlib
from typing import Any

import numpy as np

from scaledl.bench.latency import LatencyStats, time_calls
from scaledl.export.runtime import create_session
from scaledl.optimize.candidate import Candidate
from scaledl.optimize.context import SearchContext
from scaledl.optimize.paired import DropEstimate, identical, paired_drop, row_scores

SEARCH_ROUNDS = 4  # timed rounds per candidate during the search (p25 = median over rounds)


def make_session(candidate: Candidate, threads: int) -> Any:
    assert candidate.onnx is not None
    return create_session(candidate.onnx, threads=threads, config=candidate.session_config)


def scoring_session(candidate: Candidate, ctx: SearchContext) -> Any:
    """A session for passes over whole splits (accuracy or error, not latency).

    Latency is measured with the target's thread count (`threads`, often 1), but a pass over
    10,000 test images with one thread on a 2-core machine leaves half of it idle: with both
    cores the final step's test passes took 1.75× less time (the CIFAR-10-subset parent).
    Nothing else runs beside the pass, so it takes every core the process may use."""
    return make_session(candidate, scoring_threads(ctx))


def scoring_threads(ctx: SearchContext) -> int:
    from scaledl.train.launch import available_cores

    return ctx.config.scoring_threads or available_cores()


def run(session: Any, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    name = session.get_inputs()[0].name
    parts = [
        session.run(None, {name: x[i : i + batch_size]})[0] for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(parts)


def quality_of(metrics: dict[str, float], task: str) -> float:
    """Higher is better: accuracy (the accuracy budget's), or −error for regression (the error
    budget's: MSE, on the standardised scale when the model has one)."""
    from scaledl.metrics import task_error

    if task == "classification":
        return float(metrics["accuracy"])
    return -task_error(metrics)


def headline_metric(task: str, metrics: dict[str, float] | None = None) -> str:
    """The metric people read for a task: accuracy, or the regression error the budget uses."""
    if task == "classification":
        return "accuracy"
    return "mse_standardized" if metrics is None or "mse_standardized" in metrics else "mse"


def split_metrics(
    session: Any, x: np.ndarray, y: np.ndarray, task: str, error_scale: Any = None
) -> tuple[dict[str, float], np.ndarray]:
    """The split's metrics and the per-row results behind them (for paired comparisons)."""
    return outputs_metrics(finite_outputs(session, x), y, task, error_scale)


def finite_outputs(session: Any, x: np.ndarray) -> np.ndarray:
    outputs = run(session, x)
    if not np.all(np.isfinite(outputs)):
        raise ValueError("the graph produces non-finite outputs")
    return outputs


def outputs_metrics(
    outputs: np.ndarray, y: np.ndarray, task: str, error_scale: Any = None
) -> tuple[dict[str, float], np.ndarray]:
    from scaledl.metrics import evaluate_outputs

    metrics = evaluate_outputs(outputs, y, task, error_scale)
    return metrics, row_scores(outputs, y, task, error_scale)


def judge(candidate: Candidate, parent: Candidate, ctx: SearchContext) -> None:
    """The candidate's paired drop against the parent on the validation rows."""
    confidence = ctx.config.confidence
    if candidate is parent:
        candidate.drop = identical(len(ctx.x_val), confidence)
        return
    candidate.drop = paired_drop(
        parent.val_rows,
        candidate.val_rows,
        ctx.splits.val.y,
        ctx.task,
        confidence,
        seed=ctx.config.seed,
    )


def judge_outputs(outputs: np.ndarray, parent: Candidate, ctx: SearchContext) -> DropEstimate:
    """The paired drop of other validation outputs of a graph (e.g. the same graph in another
    engine) against the parent, scored as `score` scores every candidate (a forecaster's rows
    on its error scale)."""
    return paired_drop(
        parent.val_rows,
        row_scores(outputs, ctx.splits.val.y, ctx.task, ctx.error_scale),
        ctx.splits.val.y,
        ctx.task,
        ctx.config.confidence,
        seed=ctx.config.seed,
    )


def judge_test(candidate: Candidate, parent: Candidate, ctx: SearchContext) -> None:
    """The same paired drop on the test split (rows the search never looked at)."""
    if candidate.test_rows is None or parent.test_rows is None or not len(parent.test_rows):
        return
    if candidate is parent:
        candidate.test_drop = identical(len(parent.test_rows), ctx.config.confidence)
        return
    candidate.test_drop = paired_drop(
        parent.test_rows,
        candidate.test_rows,
        ctx.splits.test.y,
        ctx.task,
        ctx.config.confidence,
        seed=ctx.config.seed,
    )


def ensure_onnx(candidate: Candidate, ctx: SearchContext, exporter: str | None = None) -> Candidate:
    """Export the candidate's PyTorch model when its graph is out of date (parity checked)."""
    if candidate.onnx is not None:
        return candidate
    from scaledl.export.onnx_export import export_onnx

    if candidate.module is None:
        raise ValueError(f"candidate {candidate.label} has neither a graph nor a model")
    from scaledl.modalities.scales import parity_scale

    tolerance = ctx.parent.manifest.parity.tolerance
    module = copy.deepcopy(candidate.module).eval()
    result = export_onnx(
        module,
        ctx.example,
        ctx.opset,
        exporter or ctx.exporter,
        tolerance,
        parity_scale(ctx.parent),
        dynamic_axes=ctx.dynamic_axes,
    )
    candidate.onnx = result.onnx_bytes
    candidate.export = {"exporter": result.exporter, "opset": result.opset}
    candidate.parity = {
        "reference": "pytorch-fp32",
        "max_abs_error": result.max_abs_error,
        "tolerance": tolerance,
        "outputs": result.parity_outputs,
        **({"scale": "error_scale"} if parity_scale(ctx.parent) is not None else {}),
    }
    return candidate


def score(candidate: Candidate, ctx: SearchContext) -> Candidate:
    """Validation metrics and latency of the candidate's graph; marks it ok."""
    scoring = scoring_session(candidate, ctx)
    start = time.monotonic()  # the pass alone: the test pass is estimated from it, by rows
    candidate.val, candidate.val_rows = split_metrics(
        scoring, ctx.x_val, ctx.splits.val.y, ctx.task, ctx.error_scale
    )
    candidate.metrics_seconds = time.monotonic() - start
    session = make_session(candidate, ctx.config.threads)
    x = ctx.latency_input()
    name = session.get_inputs()[0].name

    def call() -> Any:
        return session.run(None, {name: x})

    for _ in range(10):
        call()
    rounds = [
        time_calls(
            call, warmup=0, min_iterations=5, min_seconds=ctx.config.measure_seconds / SEARCH_ROUNDS
        )
        for _ in range(SEARCH_ROUNDS)
    ]
    candidate.latency = LatencyStats.from_rounds(rounds, ctx.config.batch_size)
    candidate.latency_source = "search"
    candidate.status = "ok"
    return candidate


def score_test(candidate: Candidate, ctx: SearchContext, keep_outputs: bool = False) -> None:
    """Test metrics; with `keep_outputs`, the outputs too (for the candidate's package)."""
    outputs = finite_outputs(scoring_session(candidate, ctx), ctx.x_test)
    candidate.test, candidate.test_rows = outputs_metrics(
        outputs, ctx.splits.test.y, ctx.task, ctx.error_scale
    )
    candidate.test_outputs = outputs if keep_outputs else None


def zipped_size(data: bytes) -> int:
    """Deflate size: what sparsity (zeros) saves on disk or on the wire, where raw size does not."""
    return len(zlib.compress(data, 6))
