"""`train_recipe`: data → model → training → package, for a typed recipe.

Under torchrun every rank runs this function: all ranks load the data and train their shards;
rank 0 alone writes the recipe copy, checkpoints, history and the package.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scaledl.contract import SpecBase
from scaledl.errors import ModelError
from scaledl.fsio import atomic_write_text
from scaledl.models import ModelSpec
from scaledl.recipe import Recipe
from scaledl.train.checkpoint import CHECKPOINT_DIR, check_resumable

log = logging.getLogger(__name__)
PACKAGE_DIR = "package"
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
    rank: int = 0
    world_size: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


@dataclass
class ScaleOptions:
    """How to run (not what to learn): never part of the recipe or its hash."""

    device: str = "auto"
    precision: str = "auto"
    checkpoint_every: int | None = None
    dist_timeout: float = 60.0
    sample_log: Path | None = None
    trust_code: bool = False  # import the class a `custom` recipe names (--trust-code)


def model_spec_for(recipe: Recipe, preprocessing: SpecBase, num_outputs: int) -> ModelSpec:
    """What model.json will hold: the family, its knobs, and the modality's front-end if any."""
    from scaledl.modalities import modality_of

    family = recipe.model.family
    frontend = modality_of(preprocessing).frontend(preprocessing, family)
    shape = list(preprocessing.sample_shape)
    return ModelSpec(family, shape, num_outputs, recipe.model.knobs(), frontend=frontend)


def build_model_for(recipe: Recipe, spec: ModelSpec, trust_code: bool = False) -> Any:
    import torch

    torch.manual_seed(recipe.seed)
    sample_shape = tuple(spec.input_shape)
    try:
        return spec.build(trust_code=trust_code)
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
    options: ScaleOptions | None = None,
) -> TrainOutput:
    """Load data, build (or take) the model, train, export and package.

    Runs as one process, or as one rank of the group torchrun started. `model` replaces the
    recipe's family for a user's own nn.Module (see `train_module`).
    """
    from scaledl.train.distributed import init_distributed

    options = options or ScaleOptions()
    ctx = init_distributed(options.device, options.dist_timeout)
    try:
        if resume and not ctx.distributed:
            check_resumable(Path(out_dir))  # before minutes of data loading
        return _train(recipe, Path(out_dir), resume, callbacks, model, options, ctx)
    finally:
        ctx.close()


def _train(
    recipe: Recipe,
    out_dir: Path,
    resume: bool,
    callbacks: list[Any] | None,
    model: Any | None,
    options: ScaleOptions,
    ctx: Any,
) -> TrainOutput:
    from scaledl.data.augment import build_augmenter
    from scaledl.modalities import load_splits, modality
    from scaledl.train.loop import Trainer
    from scaledl.train.samplelog import SampleLog

    splits = load_splits(recipe.data, seed=recipe.seed, task=recipe.task)
    unit = modality(splits.kind)
    if ctx.is_main:
        _warn_if_validation_was_seen(unit, splits)
    preprocessing = unit.fit(splits)
    num_outputs = splits.num_classes if recipe.task == "classification" else 1
    assert num_outputs is not None
    spec: ModelSpec | None = None
    if model is None:
        spec = model_spec_for(recipe, preprocessing, num_outputs)
        model = build_model_for(recipe, spec, options.trust_code)
    if ctx.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out_dir / "recipe.yaml", recipe.to_yaml())
    sample_log = (
        SampleLog(options.sample_log, ctx.rank, ctx.restart) if options.sample_log else None
    )
    trainer = Trainer(
        model,
        splits,
        recipe.train,
        preprocessing,
        task=recipe.task,
        seed=recipe.seed,
        augmenter=build_augmenter(recipe.augment, unit.augmentation_kind()),
        checkpoint_dir=out_dir / CHECKPOINT_DIR,
        fingerprint=f"{recipe.digest()}:{splits.fingerprint}",
        callbacks=callbacks,
        dist=ctx,
        precision=options.precision,
        checkpoint_every=options.checkpoint_every,
        step_callbacks=[sample_log] if sample_log else None,
    )
    try:
        # a group torchrun restarted continues from its checkpoint, or starts if it has none yet
        result = trainer.fit(resume=resume or ctx.restart > 0, require_checkpoint=resume)
    finally:
        if sample_log:
            sample_log.close()
    package = out_dir / PACKAGE_DIR
    if ctx.is_main:
        ctx.close()  # the other ranks are done; packaging needs no group
        package = _package(recipe, splits, preprocessing, spec, result, package)
    return TrainOutput(
        package=package,
        out_dir=out_dir,
        history=result.history,
        best_epoch=result.best_epoch,
        seconds=result.seconds,
        samples_per_second=result.samples_per_second,
        stopped_early=result.stopped_early,
        rank=ctx.rank,
        world_size=ctx.world_size,
        extra=result.extra,
    )


def _package(
    recipe: Recipe, splits: Any, preprocessing: Any, spec: Any, result: Any, out: Path
) -> Path:
    from scaledl.publish import package_model

    history_json = json.dumps(result.history, indent=1)
    return package_model(
        result.model,
        splits,
        preprocessing,
        out,
        name=recipe.name,
        task=recipe.task,
        family=recipe.model.family if spec is not None else "custom",
        model_spec=spec.to_json() if spec is not None else None,
        export=recipe.export,
        recipe_yaml=recipe.to_yaml(),
        lineage={
            "recipe_hash": recipe.digest(),
            "data": recipe.data.model_dump(mode="json"),
            "augment": recipe.augment.model_dump(mode="json"),
        },
        metrics={
            f"val_{'accuracy' if recipe.task == 'classification' else 'loss'}": abs(
                result.best_metric
            ),
            "best_epoch": result.best_epoch,
            "epochs_run": len(result.history),
            "train_seconds": round(result.seconds, 3),
            "train_samples_per_second": round(result.samples_per_second, 1),
            "train_processes": result.extra.get("world_size", 1),
            **{
                key: result.extra[key]
                for key in ("utilisation", "time_budget")
                if result.extra.get(key)
            },
        },
        extra_files={HISTORY: history_json.encode()},
        threshold=recipe.train.threshold,
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


def _warn_if_validation_was_seen(unit: Any, splits: Any) -> None:
    """Validation rows that are pieces of training rows (SST-2's phrases) make the best epoch's
    score, and every later budget judged on them, optimistic for new data: say so, and how to
    split instead."""
    from scaledl.modalities.base import SEEN_WARNING_SHARE

    share = unit.seen_in_training(splits)
    if share is not None and share >= SEEN_WARNING_SHARE:
        log.warning(
            "%.0f%% of the validation rows occur inside training rows (sampled): validation "
            "scores describe data the model has read; for a validation of new data use %s",
            share * 100,
            unit.seen_fix,
        )
