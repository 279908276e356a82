"""Fine-tune the training source's weights on old + new data and package the result."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scaledl.config.maintain import FinetuneConfig
from scaledl.data.dataset import DataSplits
from scaledl.package import MODEL_JSON, RECIPE, Package
from scaledl.publish import package_model

log = logging.getLogger(__name__)


@dataclass
class Retrained:
    package: Path
    seconds: float
    best_epoch: int
    epochs_run: int
    val_accuracy: float  # regressors: the validation error (loss)
    test_accuracy: float  # regressors: the test error
    history: list[dict[str, Any]] = field(default_factory=list)
    metric: str = "accuracy"

    def to_json(self) -> dict[str, Any]:
        return {
            "package": str(self.package),
            "seconds": round(self.seconds, 3),
            "best_epoch": self.best_epoch,
            "epochs_run": self.epochs_run,
            f"val_{self.metric}": round(self.val_accuracy, 6),
            f"test_{self.metric}": round(self.test_accuracy, 6),
        }


def finetune_package(
    source: Package,
    splits: DataSplits,
    config: FinetuneConfig,
    out: Path,
    lineage: dict[str, Any],
    trust_code: bool = False,
) -> Retrained:
    """Start from `source`'s weights, train on `splits`, export and package into `out`."""
    from scaledl.config.export import ExportConfig
    from scaledl.export.reexport import load_module
    from scaledl.optimize.context import parent_loss
    from scaledl.optimize.distill import DistillConfig, finetune

    started = time.monotonic()
    task = source.manifest.task
    preprocessing = source.preprocessing
    student = load_module(source, trust_code=trust_code)
    result = finetune(
        student,
        splits,
        preprocessing,
        teacher=None,
        config=DistillConfig(
            epochs=config.epochs,
            lr=config.lr,
            batch_size=config.batch_size,
            optimizer=config.optimizer,
            weight_decay=config.weight_decay,
            threads=config.threads,
            **parent_loss(source),
        ),
        seed=config.seed,
        task=task,
        augment=_augment(source) if config.augment else None,
    )
    train_seconds = time.monotonic() - started
    export = source.manifest.export
    recipe = source.file(RECIPE).read_text() if RECIPE in source.manifest.files else None
    val_key = "val_accuracy" if task == "classification" else "val_loss"
    package = package_model(
        result.model,
        splits,
        preprocessing,
        out,
        name=source.name,
        task=task,
        family=source.manifest.family,
        model_spec=source.read_json(MODEL_JSON),
        export=ExportConfig(
            opset=export.opset,
            exporter=export.exporter if config.exporter == "parent" else config.exporter,
            parity_tolerance=source.manifest.parity.tolerance,
        ),
        recipe_yaml=recipe,
        lineage=lineage,
        metrics={
            val_key: abs(result.best_metric),
            "best_epoch": result.best_epoch,
            "epochs_run": len(result.history),
            "train_seconds": round(train_seconds, 3),
        },
        extra_files={"history.json": json.dumps(result.history, indent=1).encode()},
        threshold=_threshold(source),
    )
    metrics = json.loads((package / "manifest.json").read_text())["metrics"]
    test_key = "accuracy" if task == "classification" else "loss"
    return Retrained(
        package=package,
        seconds=time.monotonic() - started,
        best_epoch=result.best_epoch,
        epochs_run=len(result.history),
        val_accuracy=float(abs(result.best_metric)),
        test_accuracy=float(metrics.get(test_key, float("nan"))),
        history=result.history,
        metric="accuracy" if task == "classification" else "error",
    )


def _threshold(source: Package) -> str | float:
    """The source's decision rule, chosen again on the new validation split the same way."""
    decision = source.manifest.decision
    if decision is None:
        return "argmax"
    return "max_f1" if decision.chosen_by.startswith("max F1") else decision.threshold


def _augment(source: Package) -> Any:
    """The augmentation the model was trained with (its recipe's `augment`), if any."""
    if RECIPE not in source.manifest.files:
        return None
    import yaml

    from scaledl.data.augment import AugmentConfig

    try:
        recipe = yaml.safe_load(source.file(RECIPE).read_text()) or {}
        return AugmentConfig.model_validate(recipe.get("augment") or {})
    except Exception as exc:  # a hand-written recipe: fine-tune without augmentation
        log.info("recipe augment section not usable (%s); fine-tuning without it", exc)
        return None
