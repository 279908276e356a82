"""What a search leaves behind: a package per kept candidate, frontier.json and report.html.

The whole output folder is built aside and swapped in at once, so a crash or an interrupted
search never leaves a mix of old and new results. Package paths in frontier.json are relative to
the folder that holds it (the parent's is absolute: it lives elsewhere).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from scaledl.errors import UsageError
from scaledl.fsio import atomic_directory
from scaledl.optimize.candidate import Candidate
from scaledl.optimize.evaluation import headline_metric
from scaledl.optimize.finalize import SearchResult

FRONTIER = "frontier.json"
REPORT = "report.html"
PACKAGES = "packages"


def check_out_dir(out: Path) -> None:
    """Refuse to replace a folder that is not an earlier optimize output."""
    if out.is_file():
        raise UsageError(f"--out {out} is a file; expected a folder for the optimize results")
    if out.is_dir() and any(out.iterdir()) and not (out / FRONTIER).is_file():
        raise UsageError(
            f"--out {out} exists and is not the output of an earlier `scaledl optimize` "
            f"(no {FRONTIER}); choose a new or empty folder"
        )


def slug(candidate: Candidate) -> str:
    text = "_".join(candidate.transforms) or "parent"
    text = re.sub(r"[^A-Za-z0-9._-]+", "-", text.replace(":", "-"))
    return f"{candidate.id}-{text}"[:80].rstrip("-_.")


def kept_candidates(result: SearchResult) -> list[Candidate]:
    """Candidates that get a package: the Pareto frontier and the winner (or all, if asked)."""
    return [c for c in result.candidates if c.id in set(result.kept)]


def write_outputs(result: SearchResult, out: Path) -> Path:
    from scaledl.optimize.packaging import write_candidate_package
    from scaledl.optimize.report import render_report

    kept = kept_candidates(result)
    for candidate in kept:
        candidate.package = f"{PACKAGES}/{slug(candidate)}"
    result.out_dir = out
    with atomic_directory(out) as tmp:
        started = result.ctx.elapsed()
        for candidate in kept:
            assert candidate.package is not None
            write_candidate_package(result, candidate, tmp / candidate.package)
        # its estimate was set by the final step, which knew the search's measurements
        packages = result.final_phases.setdefault("packages", {})
        packages["used"] = round(result.ctx.elapsed() - started, 1)
        (tmp / FRONTIER).write_text(json.dumps(frontier_json(result), indent=2))
        (tmp / REPORT).write_text(render_report(result))
    return out


def candidate_json(c: Candidate, result: SearchResult) -> dict[str, Any]:
    cons = result.constraints
    entry: dict[str, Any] = {
        "id": c.id,
        "transforms": c.transforms,
        "base": c.base,
        "status": c.status,
        "precision": c.precision,
        "package": c.package,
        "chosen": result.choice.chosen is c,
        "pareto": c.id in result.frontier,
        "seconds": round(c.seconds, 2),
        "notes": c.notes,
        "engine": c.engine,
    }
    if not c.ok or c.latency is None:
        return entry
    metric = headline_metric(result.ctx.task, c.val)
    entry.update(
        {
            "metric": metric,
            f"val_{metric}": c.val.get(metric),
            f"test_{metric}": c.test.get(metric),
            "accuracy_drop": round(cons.drop(c), 6),
            **(
                {"error_increase": round(cons.error_increase(c), 6)}
                if cons.budget == "error"
                else {}
            ),
            "drop": c.drop.to_json() if c.drop is not None else None,
            "test_drop": c.test_drop.to_json() if c.test_drop is not None else None,
            **({"cross_fit": c.cross_fit} if c.cross_fit else {}),
            "val": c.val,
            "test": c.test,
            "meets": cons.checks(c),
            "latency_ms": {
                "p25": c.latency.p25_ms,
                "p50": c.latency.p50_ms,
                "p95": c.latency.p95_ms,
                "p99": c.latency.p99_ms,
                "mean": c.latency.mean_ms,
            },
            "latency_source": c.latency_source,
            "batch_size": c.latency.batch_size,
            "throughput": c.latency.throughput,
            "size_bytes": c.size_bytes,
            "size_mb": round(c.size_bytes / 1e6, 6),
            "zipped_bytes": zipped(c),
            "structure": {k: v for k, v in c.structure.items() if k != "outputs"},
            "quantization": c.quantization,
        }
    )
    return entry


def zipped(c: Candidate) -> int:
    from scaledl.optimize.evaluation import zipped_size

    return zipped_size(c.onnx) if c.onnx is not None else 0


def frontier_json(result: SearchResult) -> dict[str, Any]:
    ctx, choice = result.ctx, result.choice
    config = ctx.config
    chosen, winner = choice.chosen, result.winner
    return {
        "format": "scaledl.frontier/1",
        "parent": {
            "id": result.parent.id,
            "package": str(ctx.parent.source.resolve()),
            "name": ctx.parent.name,
            "version": ctx.parent.version,
            "has_weights": ctx.has_weights,
        },
        "data": {
            "source": ctx.data_label,
            "split_seed": ctx.splits.split_seed,
            **({"grouped": ctx.splits.grouped} if ctx.splits.grouped else {}),
        },
        "target": {"name": config.target, "cpu": ctx.cpu.to_json(), "threads": config.threads},
        "constraints": {
            "max_accuracy_drop": config.max_accuracy_drop,
            "max_error_increase": config.max_error_increase,
            "budget": result.constraints.budget,
            "confidence": config.confidence,
            "latency_ms_p95": config.latency_ms,
            "max_size_mb": config.max_size_mb,
            "batch_size": config.batch_size,
        },
        "time_budget_s": config.time_budget_min * 60,
        "time": result.time_summary(),
        "timing": {
            "threads": config.threads,
            "batch_size": config.batch_size,
            "noise": round(result.noise, 4),
            "tie_tolerance": round(result.tie_tolerance, 4),
        },
        "seconds": round(ctx.elapsed(), 1),
        "met": result.met,
        "chosen": chosen.id if chosen is not None else None,
        "chosen_package": chosen.package if chosen is not None else None,
        "best_effort": winner.id if winner is not None else None,
        "best_effort_package": winner.package if winner is not None else None,
        "reason": choice.reason,
        "promise": result.promise(),
        "selection": {
            "split": "val",
            "rows": len(ctx.splits.val),
            "test_rows": len(ctx.splits.test),
            "rule": "paired bootstrap upper bound of the drop vs the parent ≤ max_accuracy_drop",
            **({"cross_fit": result.cross_fit} if result.cross_fit else {}),
            **(
                {"seen_in_training": round(result.seen_in_training, 3)}
                if result.seen_in_training is not None
                else {}
            ),
            **({"warning": warning} if (warning := result.seen_warning()) else {}),
        },
        "diagnosis": choice.diagnosis,
        "frontier": result.frontier,
        "candidates": [candidate_json(c, result) for c in result.candidates],
        "skipped": result.skipped,
        "config": config.model_dump(mode="json"),
    }
