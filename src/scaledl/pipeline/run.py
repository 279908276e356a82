"""`scaledl run`: train → package → verify → evaluate → report, end to end."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaledl.fsio import atomic_write_text
from scaledl.package import REPORT, open_package, update_package
from scaledl.recipe import Recipe


@dataclass
class RunOutput:
    package: Path
    report: Path
    metrics: dict[str, Any]
    checks: list[str]
    seconds: float


def run_recipe(
    recipe: Recipe, out_dir: Path, resume: bool = False, trust_code: bool = False
) -> RunOutput:
    import time

    from scaledl.evaluate import evaluate_package
    from scaledl.pipeline.train import ScaleOptions, train_recipe
    from scaledl.report.training import training_report
    from scaledl.verify import verify_package

    start = time.perf_counter()
    trained = train_recipe(
        recipe, out_dir, resume=resume, options=ScaleOptions(trust_code=trust_code)
    )
    verified = verify_package(trained.package)
    evaluation = evaluate_package(trained.package, split="test")
    pkg = open_package(trained.package)
    html = training_report(pkg, trained.history, evaluation.to_json(), verified.checks)
    update_package(trained.package, add_files={REPORT: html.encode()})
    report_copy = Path(out_dir) / REPORT
    atomic_write_text(report_copy, html)
    metrics: dict[str, Any] = {
        **{k: v for k, v in evaluation.metrics.items()},
        **evaluation.extra,
        "samples": evaluation.samples,
        "best_epoch": trained.best_epoch,
        "train_seconds": round(trained.seconds, 2),
        "train_samples_per_second": round(trained.samples_per_second, 1),
        **{k: trained.extra[k] for k in ("utilisation", "time_budget") if k in trained.extra},
    }
    atomic_write_text(Path(out_dir) / "metrics.json", json.dumps(metrics, indent=2))
    return RunOutput(
        package=trained.package,
        report=trained.package / REPORT,
        metrics=metrics,
        checks=verified.checks,
        seconds=time.perf_counter() - start,
    )
