"""Time-series fixtures: a synthetic hourly series in a CSV and a small trained forecaster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

COLUMNS = ["load", "temp", "price"]
START = np.datetime64("2021-01-01T00:00:00", "s")


def series_values(
    rows: int, seed: int = 0, offset: float = 0.0, start: int = 0, period: float = 24.0
) -> np.ndarray:
    """Three hourly variables with a daily cycle (`period` hours), a slow trend and noise, in
    distinct units; `start` continues the clock of an earlier stretch."""
    rng = np.random.default_rng(seed)
    t = np.arange(start, start + rows, dtype=np.float64)
    day = 2 * np.pi * t / period
    load = 1000 + 80 * np.sin(day) + 0.05 * t + rng.normal(0, 5, rows) + offset
    temp = 12 + 4 * np.cos(day) + rng.normal(0, 0.3, rows)
    price = 0.02 * load + 3 * np.sin(day + 1) + rng.normal(0, 0.5, rows)
    return np.stack([load, temp, price], axis=1)


def write_series(
    path: Path, values: np.ndarray, start: np.datetime64 = START, times: Any = None
) -> Path:
    stamps = times if times is not None else start + np.arange(len(values)) * np.timedelta64(1, "h")
    lines = ["date," + ",".join(COLUMNS)]
    for stamp, row in zip(stamps, values, strict=True):
        when = str(stamp).replace("T", " ")
        lines.append(when + "," + ",".join("" if np.isnan(v) else f"{v:.4f}" for v in row))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def series_csv(tmp_path: Path) -> Path:
    return write_series(tmp_path / "series.csv", series_values(600))


def series_recipe(source: Path, **series: Any) -> dict[str, Any]:
    return {
        "name": "synthetic",
        "data": {
            "source": str(source),
            "series": {"lookback": 48, "horizon": 12, **series},
            "val_fraction": 0.2,
            "test_fraction": 0.2,
        },
        "model": {"family": "mlp"},
        "train": {"epochs": 8, "batch_size": 32, "lr": 0.01, "threads": 1},
        "export": {"exporter": "legacy"},  # the same graph as dynamo's here, much faster
    }


@pytest.fixture(scope="session")
def series_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A linear forecaster (lookback 48, horizon 12) trained on the synthetic series."""
    from scaledl.pipeline import train_recipe
    from scaledl.recipe import validate_recipe

    root = tmp_path_factory.mktemp("series")
    csv = write_series(root / "series.csv", series_values(900))
    recipe = validate_recipe(series_recipe(csv))
    return train_recipe(recipe, root / "run").package
