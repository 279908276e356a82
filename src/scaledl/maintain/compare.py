"""The task metric of the live and the new version on labelled rows, offline in ONNX Runtime:
accuracy for classifiers, the error (MSE on the live model's error scale) for regressors."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from scaledl.evaluate import predict_raw
from scaledl.maintain.datasets import EvalSet
from scaledl.maintain.decision import Measured, Metric
from scaledl.package import Package


def predictions(pkg: Package, x_raw: np.ndarray) -> np.ndarray:
    return np.asarray(predict_raw(pkg, x_raw)).argmax(axis=1)


def metric_of(pkg: Package) -> Metric:
    return "accuracy" if pkg.manifest.task == "classification" else "error"


def error_scale(pkg: Package) -> Any:
    """The scale both versions' errors are measured on: the live version's (the same rows and
    the same yardstick for both)."""
    from scaledl.modalities import modality_of

    spec = pkg.preprocessing
    return modality_of(spec).error_scale(spec)


def score(outputs: np.ndarray, y: np.ndarray, metric: Metric, scale: Any = None) -> float:
    """Accuracy of class outputs, or the mean squared error (on `scale`) of regression outputs."""
    from scaledl.metrics import regression_errors, task_error

    if metric == "accuracy":
        return float((np.asarray(outputs).argmax(axis=1) == y).mean())
    return task_error(regression_errors(outputs, y, scale))


def offline(live: Package, candidate: Package, sets: list[EvalSet]) -> list[Measured]:
    from scaledl.evaluate import predict_raw

    metric = metric_of(live)
    scale = error_scale(live) if metric == "error" else None
    out = []
    for s in sets:
        if not len(s):
            continue
        live_value = score(predict_raw(live, s.x), s.y, metric, scale)
        cand_value = score(predict_raw(candidate, s.x), s.y, metric, scale)
        out.append(Measured(_name(s.name), "offline", len(s), live_value, cand_value, metric))
    return out


def _name(name: str) -> Literal["new", "reference"]:
    return "new" if name == "new" else "reference"
