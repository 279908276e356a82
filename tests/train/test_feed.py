"""Batches built ahead (a thread, worker processes) are bit-identical to batches built inline."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from scaledl.data.augment import build_augmenter
from scaledl.modalities import load_splits, modality_of
from scaledl.preprocess import fit_preprocessing
from scaledl.recipe import validate_recipe
from scaledl.train.feed import Batch, BatchSource, Feeder, auto_prefetch, auto_workers
from scaledl.train.sharding import batch_bounds
from tests.conftest import quick_recipe

POLICY = [
    {"op": "crop", "padding": 2},
    {"op": "hflip"},
    {"op": "color_jitter", "brightness": 0.3, "contrast": 0.3},
    {"op": "mixup", "p": 0.3},
]


def _source(rank: int, world_size: int) -> tuple[BatchSource, int]:
    recipe = validate_recipe(quick_recipe(augment={"policy": POLICY}))
    splits = load_splits(recipe.data, seed=0, task="classification")
    prep = fit_preprocessing(splits)
    transform = modality_of(prep).batch_transform(prep)
    augmenter = build_augmenter(recipe.augment, splits.kind)
    assert augmenter is not None
    train = splits.train
    augmenter.bind(train.x, train.y, transform.scale, splits.num_classes)
    bounds = batch_bounds(len(train), 100)
    source = BatchSource(train.x, train.y, transform, augmenter, 3, bounds, rank, world_size)
    return source, len(bounds)


def _epochs(feeder: Feeder, steps: int) -> list[Batch]:
    # epoch 0 from a mid-epoch step (a resumed run), then a whole epoch 1
    return [*feeder.epoch(0, 2, steps), *feeder.epoch(1, 0, steps)]


def _same(a: list[Batch], b: list[Batch]) -> None:
    assert [x.step for x in a] == [x.step for x in b]
    for x, y in zip(a, b, strict=True):
        assert (x.index == y.index).all() and x.global_size == y.global_size
        assert torch.equal(x.x, y.x) and torch.equal(x.y, y.y)
        assert (x.soft is None) == (y.soft is None)
        if x.soft is not None and y.soft is not None:
            assert torch.equal(x.soft, y.soft)


@pytest.mark.parametrize("rank,world_size", [(0, 1), (1, 2)])
def test_workers_and_threads_build_the_same_batches(rank: int, world_size: int) -> None:
    source, steps = _source(rank, world_size)
    cpu = torch.device("cpu")
    inline = _epochs(Feeder(source, steps, 0, 0, cpu), steps)
    threaded = _epochs(Feeder(source, steps, 0, 3, cpu), steps)
    workers = Feeder(source, steps, 2, 2, cpu)
    try:
        in_workers = _epochs(workers, steps)
    finally:
        workers.close()
    assert len(inline) == 2 * steps - 2
    assert any(b.soft is not None for b in inline)  # mixup ran
    _same(inline, threaded)
    _same(inline, in_workers)


def test_a_failing_batch_is_raised_in_the_training_thread() -> None:
    source, steps = _source(0, 1)

    def broken(epoch: int, step: int) -> Any:
        raise ValueError("bad sample")

    feeder = Feeder(source, steps, 0, 2, torch.device("cpu"))
    feeder.source = broken  # type: ignore[assignment]
    with pytest.raises(ValueError, match="bad sample"):
        list(feeder.epoch(0, 0, steps))


def test_auto_feeding_by_split_size_and_cores() -> None:
    assert auto_workers(1_437, 32) == 0 and auto_prefetch(1_437, 0) == 0  # tiny: inline
    assert auto_workers(48_000, 2) == 0 and auto_prefetch(48_000, 0) == 2  # few cores: a thread
    assert auto_workers(48_000, 16) >= 1 and auto_prefetch(48_000, 4) == 2


@pytest.mark.slow
def test_training_with_workers_gives_the_same_weights(tmp_path: Any) -> None:
    from scaledl.pipeline.train import train_recipe

    def run(workers: int, out: str) -> dict[str, torch.Tensor]:
        recipe = validate_recipe(
            quick_recipe(
                model={"family": "mlp", "hidden": [32]},
                train={"epochs": 1, "batch_size": 128, "data_workers": workers},
                augment={"policy": POLICY},
            )
        )
        trained = train_recipe(recipe, tmp_path / out)
        assert trained.extra["utilisation"]["data_workers"] == workers
        return {k: v for k, v in trained_weights(tmp_path / out).items()}

    inline, in_workers = run(0, "inline"), run(2, "workers")
    for key, value in inline.items():
        assert torch.equal(value, in_workers[key]), key


def trained_weights(out: Any) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(out / "package" / "weights.safetensors"))
