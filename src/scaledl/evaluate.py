"""Accuracy of a package's ONNX graph on a data set, with the package's own preprocessing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scaledl.errors import DataError
from scaledl.package import Package, open_package
from scaledl.preprocess import apply_preprocessing


@dataclass
class Evaluation:
    metrics: dict[str, float]
    samples: int
    confusion: list[list[int]] | None = None
    labels: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "metrics": self.metrics,
            "samples": self.samples,
            "labels": self.labels,
            "confusion_matrix": self.confusion,
            **self.extra,
        }


def run_session(session: Any, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    name = session.get_inputs()[0].name
    outs = [
        session.run(None, {name: x[i : i + batch_size]})[0] for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(outs) if outs else np.empty((0,), np.float32)


def predict_raw(
    pkg: Package, x_raw: np.ndarray, session: Any = None, batch_size: int = 512
) -> np.ndarray:
    """Graph outputs for raw inputs (preprocessing applied as the package says)."""
    from scaledl.export.runtime import package_session, run_checked

    session = session or package_session(pkg)
    x = apply_preprocessing(x_raw, pkg.preprocessing)
    return run_checked(session, x, pkg.source, batch_size)


def confusion_matrix(y: np.ndarray, pred: np.ndarray, classes: int) -> list[list[int]]:
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (y, pred), 1)
    return matrix.tolist()


def evaluate_arrays(
    pkg: Package, x_raw: np.ndarray, y: np.ndarray, session: Any = None
) -> Evaluation:
    from scaledl.metrics import evaluate_outputs
    from scaledl.modalities import modality_of

    task = pkg.manifest.task
    outputs = predict_raw(pkg, x_raw, session)
    if task != "classification":
        unit = modality_of(pkg.preprocessing)
        scale = unit.error_scale(pkg.preprocessing)
        metrics = evaluate_outputs(outputs, y, task, scale)
        extra = unit.evaluation_extras(pkg.preprocessing, x_raw, y, outputs)
        return Evaluation(metrics=metrics, samples=len(y), extra=extra)
    metrics = evaluate_outputs(outputs, y, task)
    labels = pkg.labels or [str(i) for i in range(outputs.shape[1])]
    if len(y) and int(y.max()) >= len(labels):
        raise DataError(
            f"data holds class id {int(y.max())} but the model knows {len(labels)} classes"
        )
    predicted = outputs.argmax(axis=1)
    decision = pkg.manifest.decision
    if decision is not None:  # the package's own threshold, as /predict applies it
        from scaledl.metrics import apply_decision

        predicted, at = apply_decision(outputs, y, decision.model_dump())
        metrics.update(at)
    matrix = confusion_matrix(y, predicted, len(labels))
    return Evaluation(metrics=metrics, samples=len(y), confusion=matrix, labels=labels)


def evaluate_package(path: Path | str, data: Any | None = None, split: str = "test") -> Evaluation:
    """Evaluate on `data` (a DataConfig or source string; default: the package's own data set).

    With the package's own data set the chosen `split` is used; for another data set every row
    is scored, after checking its classes match the package's labels.
    """
    from scaledl.data import DataConfig
    from scaledl.modalities import load_data, load_splits

    pkg = open_package(path)
    lineage = pkg.manifest.lineage
    task = pkg.manifest.task
    own = DataConfig.from_lineage(lineage.data or {"source": "digits"}, pkg.source)
    if data is None:
        config = own
    elif isinstance(data, str):
        config = own.with_source(data)
    else:
        config = data
    if config.source == own.source:
        splits = load_splits(config, seed=lineage.split_seed, task=task)
        part = {"train": splits.train, "val": splits.val, "test": splits.test}[split]
        return evaluate_arrays(pkg, part.x, part.y)
    loaded = load_data(config, task)
    if task == "classification" and loaded.labels is None:
        raise DataError(
            f"data {config.source} has no labels (e.g. a .txt of texts); evaluation needs "
            "labelled rows — `scaledl monitor report` checks unlabelled data"
        )
    _check_labels(pkg, loaded.labels, config.source)
    rows = loaded.data if loaded.test is None else loaded.test
    return evaluate_arrays(pkg, rows.x, rows.y)


def _check_labels(pkg: Package, labels: list[str] | None, source: str) -> None:
    known = pkg.labels
    if known is None or labels is None:
        return
    if labels != known[: len(labels)]:
        raise DataError(
            f"data {source} has classes {labels}, the package was trained on {known}; "
            "class folders/ids must match"
        )
