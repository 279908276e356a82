"""Determinism, resume equivalence, checkpoints without pickle, early stopping."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from scaledl.pipeline.train import CHECKPOINT_DIR, train_recipe
from scaledl.recipe import validate_recipe
from scaledl.train.checkpoint import CHECKPOINT_NAME, load_checkpoint
from tests.conftest import quick_recipe


class Interrupt(Exception):
    pass


def weights(out: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(out / "package" / "weights.safetensors"))


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_same_seed_same_result(tmp_path: Path) -> None:
    recipe = validate_recipe(quick_recipe(train={"epochs": 2}, augment={"crop_padding": 1}))
    one = train_recipe(recipe, tmp_path / "a")
    two = train_recipe(recipe, tmp_path / "b")
    assert [h["val_accuracy"] for h in one.history] == [h["val_accuracy"] for h in two.history]
    assert_same_weights(weights(tmp_path / "a"), weights(tmp_path / "b"))


def test_resume_after_interruption_matches_uninterrupted_run(tmp_path: Path) -> None:
    recipe = validate_recipe(
        quick_recipe(
            train={"epochs": 4, "lr": 0.005},
            model={"family": "cnn", "channels": [8, 16], "dropout": 0.2},
            augment={"crop_padding": 1},
        )
    )
    train_recipe(recipe, tmp_path / "full")

    def stop_after_two(record: dict) -> None:
        if record["epoch"] == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        train_recipe(recipe, tmp_path / "resumed", callbacks=[stop_after_two])
    ckpt = load_checkpoint(tmp_path / "resumed" / CHECKPOINT_DIR / CHECKPOINT_NAME)
    assert ckpt["epoch"] == 2
    assert not (tmp_path / "resumed" / "package").exists()  # nothing half-written
    resumed = train_recipe(recipe, tmp_path / "resumed", resume=True)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    assert_same_weights(weights(tmp_path / "full"), weights(tmp_path / "resumed"))


def test_checkpoint_loads_without_unpickling(tmp_path: Path) -> None:
    recipe = validate_recipe(quick_recipe(train={"epochs": 1}))
    train_recipe(recipe, tmp_path)
    path = tmp_path / CHECKPOINT_DIR / CHECKPOINT_NAME
    state = torch.load(path, weights_only=True)  # raises if anything needs unpickling code
    assert state["epoch"] == 1 and "optimizer" in state


def test_resume_refuses_a_different_recipe(tmp_path: Path) -> None:
    from scaledl.errors import ScaledlError

    train_recipe(validate_recipe(quick_recipe(train={"epochs": 1})), tmp_path)
    other = validate_recipe(quick_recipe(train={"epochs": 1, "lr": 0.01}))
    with pytest.raises(ScaledlError, match="different recipe"):
        train_recipe(other, tmp_path, resume=True)


def test_early_stopping_keeps_best_epoch(tmp_path: Path) -> None:
    # A learning rate of zero never improves on epoch 1: patience 2 stops after epoch 3.
    recipe = validate_recipe(quick_recipe(train={"epochs": 10, "lr": 1e-12, "patience": 2}))
    out = train_recipe(recipe, tmp_path)
    assert out.stopped_early and len(out.history) == 3 and out.best_epoch == 1


def test_regression_task_on_a_table(tmp_path: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    y = x @ np.array([1.5, -2.0, 0.5]) + 0.1 * rng.normal(size=300)
    rows = ["a,b,c,target"] + [f"{r[0]},{r[1]},{r[2]},{t}" for r, t in zip(x, y)]
    (tmp_path / "reg.csv").write_text("\n".join(rows))
    recipe = validate_recipe(
        {
            "name": "reg",
            "task": "regression",
            "data": {"source": str(tmp_path / "reg.csv"), "label_column": "target"},
            "model": {"family": "mlp", "hidden": [32]},
            "train": {"epochs": 30, "lr": 0.01, "batch_size": 32},
        }
    )
    out = train_recipe(recipe, tmp_path / "run")
    import json

    manifest = json.loads((out.package / "manifest.json").read_text())
    assert manifest["task"] == "regression" and manifest["labels"] is None
    assert manifest["metrics"]["r2"] > 0.9


def test_a_users_own_module_is_trained_and_packaged(tmp_path: Path) -> None:
    import json

    from torch import nn

    from scaledl.pipeline.train import train_module
    from scaledl.verify import verify_package

    class TinyNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x)

    out = train_module(TinyNet(), tmp_path, {"name": "tiny", "train": {"epochs": 3, "lr": 0.01}})
    manifest = json.loads((out.package / "manifest.json").read_text())
    assert manifest["family"] == "custom" and manifest["metrics"]["accuracy"] > 0.8
    assert "model.json" not in manifest["files"] and "weights.safetensors" in manifest["files"]
    verify_package(out.package)


def test_a_whitening_stem_starts_from_the_training_images(tmp_path: Path) -> None:
    from scaledl.models import ModelSpec

    knobs = {"channels": [8], "depth": 1, "stem": "whiten"}
    recipe = validate_recipe(quick_recipe(model={"family": "cnn", **knobs}, train={"epochs": 1}))
    train_recipe(recipe, tmp_path / "run")
    stem = weights(tmp_path / "run")["stem.0.weight"]
    torch.manual_seed(recipe.seed)
    fresh = ModelSpec("cnn", [1, 8, 8], 10, knobs).build().stem[0].weight
    assert not torch.allclose(stem, fresh)
    half = len(stem) // 2
    torch.testing.assert_close(stem[half:], -stem[:half])  # the ± pairs of the whitening filters
