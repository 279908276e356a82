"""Fine-tune the training source's weights on old + new data and package the result."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scaledl.data.augment import AugmentConfig
from scaledl.data.dataset import DataSplits
from scaledl.export.config import ExportConfig
from scaledl.export.reexport import load_module
from scaledl.maintain.config import FinetuneConfig
from scaledl.optimize.distill import DistillConfig, finetune
from scaledl.package import MODEL_JSON, RECIPE, Package
from scaledl.publish import package_model

log = logging.getLogger(__name__)


@dataclass
class Retrained:
    package: Path
    seconds: float
    best_epoch: int
    epochs_run: int
    val_accuracy: float
    test_accuracy: float
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "package": str(self.package),
            "seconds": round(self.seconds, 3),
            "best_epoch": self.best_epoch,
            "epochs_run": self.epochs_run,
            "val_accuracy": round(self.val_accuracy, 6),
            "test_accuracy": round(self.test_accuracy, 6),
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
    )
    metrics = json.loads((package / "manifest.json").read_text())["metrics"]
    return Retrained(
        package=package,
        seconds=time.monotonic() - started,
        best_epoch=result.best_epoch,
        epochs_run=len(result.history),
        val_accuracy=float(abs(result.best_metric)),
        test_accuracy=float(metrics.get("accuracy", float("nan"))),
        history=result.history,
    )


def _augment(source: Package) -> Any:
    """The augmentation the model was trained with (its recipe's `augment`), if any."""
    if RECIPE not in source.manifest.files:
        return None
    import yaml

    try:
        recipe = yaml.safe_load(source.file(RECIPE).read_text()) or {}
        return AugmentConfig.model_validate(recipe.get("augment") or {})
    except Exception as exc:  # a hand-written recipe: fine-tune without augmentation
        log.info("recipe augment section not usable (%s); fine-tuning without it", exc)
        return None
