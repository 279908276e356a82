"""Fixtures for audio tests: a small subset of the Free Spoken Digit Dataset and synthetic WAVs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import SHARED_DATASETS

FSDD = SHARED_DATASETS / "fsdd"
PER_CLASS = 12  # the first 12 files of each digit in each split (sorted by name)


def fsdd_data(**audio: Any) -> dict[str, Any]:
    if not FSDD.is_dir():
        pytest.skip(f"the FSDD data set is not at {FSDD}")
    return {
        "source": str(FSDD),
        "limit_per_class": PER_CLASS,
        "audio": {"sample_rate": 8000, "duration_s": 0.8, **audio},
    }


def fsdd_recipe(family: str = "cnn", **overrides: Any) -> dict[str, Any]:
    """A recipe that trains in seconds on 120 clips (a smoke test of the whole path)."""
    knobs = {
        "cnn": {"channels": [8, 16], "depth": 1},
        "rnn": {"hidden": 16},
        "transformer": {"d_model": 16, "heads": 2, "layers": 1, "ff": 32},
        "mlp": {"hidden": [32]},
    }[family]
    recipe: dict[str, Any] = {
        "name": f"fsdd-{family}",
        "seed": 0,
        "data": fsdd_data(),
        "model": {"family": family, **knobs},
        "train": {"epochs": 1, "batch_size": 32, "lr": 0.003, "threads": 1},
    }
    recipe.update(overrides)
    return recipe


def tone(freq: float, rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture(scope="session")
def audio_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small CNN trained on the FSDD subset (read-only: copy it before changing it)."""
    from scaledl.pipeline.train import train_recipe
    from scaledl.recipe import validate_recipe

    out = tmp_path_factory.mktemp("fsdd-run")
    recipe = fsdd_recipe(train={"epochs": 3, "batch_size": 32, "lr": 0.005, "threads": 1})
    return train_recipe(validate_recipe(recipe), out).package
