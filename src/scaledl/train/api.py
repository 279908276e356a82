"""`train_recipe`: data → model → training → package, for a typed recipe."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaledl.errors import ModelError
from scaledl.fsio import atomic_write_text
from scaledl.recipe import Recipe

log = logging.getLogger(__name__)
PACKAGE_DIR = "package"
CHECKPOINT_DIR = "checkpoints"
HISTORY = "history.json"


@dataclass
class TrainOutput:
    package: Path
    out_dir: Path
    history: list[dict[str, Any]]
    best_epoch: int
    seconds: float
    samples_per_second: float
    stopped_early: bool


def build_model_for(recipe: Recipe, sample_shape: tuple[int, ...], num_outputs: int) -> Any:
    import torch

    from scaledl.models import create_model

    torch.manual_seed(recipe.seed)
    try:
        return create_model(recipe.model.family, sample_shape, num_outputs, **recipe.model.knobs())
    except ValueError as exc:
        raise ModelError(
            f"model family {recipe.model.family!r} does not fit the data "
            f"(sample shape {sample_shape}): "
            f"{exc}. Families: cnn (images), mlp/rnn/transformer (images, tables, sequences)"
        ) from None


def train_recipe(
    recipe: Recipe,
    out_dir: Path,
    resume: bool = False,
    callbacks: list[Any] | None = None,
    model: Any | None = None,
) -> TrainOutput:
    """Load data, build (or take) the model, train, export and package.

    `model` replaces the recipe's family for a user's own nn.Module (see `train_module`).
    """
    from scaledl.data import load_splits
    from scaledl.data.augment import build_augmenter
    from scaledl.export.packaging import package_model
    from scaledl.models import ModelSpec
    from scaledl.preprocess import fit_preprocessing
    from scaledl.train.loop import Trainer

    out_dir = Path(out_dir)
    splits = load_splits(recipe.data, seed=recipe.seed, task=recipe.task)
    preprocessing = fit_preprocessing(splits.train.x, splits.kind, splits.scale, splits.max_value)
    num_outputs = splits.num_classes if recipe.task == "classification" else 1
    assert num_outputs is not None
    spec: ModelSpec | None = None
    if model is None:
        model = build_model_for(recipe, splits.sample_shape, num_outputs)
        spec = ModelSpec(
            recipe.model.family, list(splits.sample_shape), num_outputs, recipe.model.knobs()
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "recipe.yaml", recipe.to_yaml())
    trainer = Trainer(
        model,
        splits,
        recipe.train,
        preprocessing,
        task=recipe.task,
        seed=recipe.seed,
        augmenter=build_augmenter(recipe.augment, splits.kind),
        checkpoint_dir=out_dir / CHECKPOINT_DIR,
        fingerprint=f"{recipe.digest()}:{splits.fingerprint}",
        callbacks=callbacks,
    )
    result = trainer.fit(resume=resume)
    history_json = json.dumps(result.history, indent=1)
    package = package_model(
        result.model,
        splits,
        preprocessing,
        out_dir / PACKAGE_DIR,
        name=recipe.name,
        task=recipe.task,
        family=recipe.model.family if spec is not None else "custom",
        model_spec=spec.to_json() if spec is not None else None,
        export=recipe.export,
        recipe_yaml=recipe.to_yaml(),
        lineage={"recipe_hash": recipe.digest(), "data": recipe.data.model_dump(mode="json")},
        metrics={
            f"val_{'accuracy' if recipe.task == 'classification' else 'loss'}": abs(
                result.best_metric
            ),
            "best_epoch": result.best_epoch,
            "epochs_run": len(result.history),
            "train_seconds": round(result.seconds, 3),
            "train_samples_per_second": round(result.samples_per_second, 1),
        },
        extra_files={HISTORY: history_json.encode()},
    )
    return TrainOutput(
        package=package,
        out_dir=out_dir,
        history=result.history,
        best_epoch=result.best_epoch,
        seconds=result.seconds,
        samples_per_second=result.samples_per_second,
        stopped_early=result.stopped_early,
    )


def train_module(
    model: Any,
    out_dir: Path,
    recipe: Recipe | dict[str, Any] | None = None,
    resume: bool = False,
) -> TrainOutput:
    """Train and package a user's own `nn.Module` with a recipe's data/train/export sections.

    The module takes the normalized batch (N, *sample_shape) and returns (N, classes). The
    package holds its ONNX graph and weights; without a model.json it cannot be rebuilt by
    scaledl, so optimization skips structural methods for it.
    """
    from scaledl.recipe import validate_recipe

    if recipe is None:
        recipe = {}
    if isinstance(recipe, dict):
        recipe = validate_recipe({**recipe, "model": {"family": "custom"}})
    return train_recipe(recipe, out_dir, resume=resume, model=model)
