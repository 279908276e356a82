"""Mid-epoch checkpoints: an interrupted run resumed at the exact step ends bit-identical."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from scaledl.data.augment import build_augmenter
from scaledl.modalities import load_splits
from scaledl.pipeline.train import build_model_for, model_spec_for
from scaledl.preprocess import fit_preprocessing
from scaledl.recipe import validate_recipe
from scaledl.train.loop import Trainer
from tests.conftest import quick_recipe


class Crash(Exception):
    pass


def _trainer(
    tmp: Path | None, steps: list[Any], crash_at: tuple[int, int] | None, ema: float | None
) -> Trainer:
    recipe = validate_recipe(
        quick_recipe(
            model={"family": "cnn", "channels": [8], "depth": 1},
            train={"epochs": 2, "batch_size": 128, "lr": 0.005, "ema_decay": ema},
            augment={"policy": [{"op": "crop", "padding": 1}, {"op": "mixup", "p": 0.3}]},
        )
    )
    splits = load_splits(recipe.data, seed=0, task="classification")
    prep = fit_preprocessing(splits)

    def record(rec: dict[str, Any]) -> None:
        steps.append((rec["epoch"], rec["step"], rec["index"].tolist()))
        if crash_at == (rec["epoch"], rec["step"]):
            raise Crash

    return Trainer(
        build_model_for(recipe, model_spec_for(recipe, prep, 10)),
        splits,
        recipe.train,
        prep,
        seed=0,
        augmenter=build_augmenter(recipe.augment, splits.kind),
        checkpoint_dir=tmp,
        fingerprint="test",
        checkpoint_every=3,
        step_callbacks=[record],
    )


@pytest.mark.slow
@pytest.mark.parametrize("ema", [None, 0.9], ids=["weights", "weight-average"])
def test_resume_mid_epoch_is_bit_exact(tmp_path: Path, ema: float | None) -> None:
    reference_steps: list[Any] = []
    reference = _trainer(None, reference_steps, None, ema).fit()

    first: list[Any] = []
    with pytest.raises(Crash):
        _trainer(tmp_path, first, (1, 4), ema).fit()
    second: list[Any] = []
    resumed = _trainer(tmp_path, second, None, ema).fit(resume=True)

    # checkpoint after step index 2 (every 3 steps): epoch 1 restarts at step 3
    assert second[0][:2] == (1, 3)
    effective = [s for s in first if (s[0], s[1]) < (1, 3)] + second
    assert effective == reference_steps
    for key, value in reference.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    assert resumed.history == [
        {**h, "seconds": r["seconds"]} for h, r in zip(reference.history, resumed.history)
    ]
