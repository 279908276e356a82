"""Forecasters with different look-backs as one ensemble: the longest window in, each member
its newest steps, forecasts averaged in original units and scored on the same test windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scaledl.package import open_package
from tests.series.conftest import series_recipe


def test_forecasters_with_other_look_backs_average_their_forecasts(
    series_package: Path, tmp_path: Path
) -> None:
    from scaledl.data import DataConfig
    from scaledl.evaluate import predict_raw
    from scaledl.modalities import load_splits
    from scaledl.pipeline import train_recipe
    from scaledl.pipeline.ensemble import ensemble_packages
    from scaledl.recipe import validate_recipe
    from scaledl.verify import verify_package

    long = open_package(series_package)
    source = Path(long.manifest.lineage.data["source"])
    recipe = series_recipe(source, lookback=24)
    recipe["model"] = {"family": "rnn", "hidden": 16}
    recipe["train"] = {"epochs": 2, "batch_size": 32, "lr": 0.01}
    short = train_recipe(validate_recipe(recipe), tmp_path / "short").package

    result = ensemble_packages([short, series_package], tmp_path / "ens")
    verify_package(result.path)
    pkg = open_package(result.path)
    assert pkg.manifest.signature.input.shape == [-1, 48, 3]  # the longest look-back
    assert [m["lookback"] for m in result.members] == [24, 48]

    data = long.manifest.lineage.data
    splits = load_splits(DataConfig.from_lineage(data, series_package), task="regression")
    windows = splits.test.x  # (N, 48, 3) raw look-back windows
    expected = 0.5 * predict_raw(open_package(short), windows[:, -24:]) + 0.5 * predict_raw(
        long, windows
    )
    forecast = predict_raw(pkg, windows)
    np.testing.assert_allclose(forecast, expected, rtol=1e-5, atol=1e-3)
    std = np.asarray(pkg.preprocessing.target_std)  # type: ignore[attr-defined]
    mse = float((((forecast - splits.test.y) / std) ** 2).mean())
    assert pkg.manifest.metrics.get("mse_standardized") == pytest.approx(mse, rel=1e-4)
    assert "baselines" in pkg.manifest.metrics.model_extra  # persistence, seasonal naive
    assert len(result.members) == 2 and all("test_loss" in m for m in result.members)


def test_forecasters_of_another_version_of_the_file_are_refused(tmp_path: Path) -> None:
    """Same recipe, same path, other contents (the test period's values were corrected after
    the first model was trained): the first was trained on data the file no longer holds."""
    from scaledl.errors import PackageError
    from scaledl.pipeline import train_recipe
    from scaledl.pipeline.ensemble import ensemble_packages
    from scaledl.recipe import validate_recipe
    from tests.series.conftest import series_values, write_series

    values = series_values(600)
    csv = write_series(tmp_path / "series.csv", values)
    recipe = series_recipe(csv)
    recipe["train"] = {"epochs": 1, "batch_size": 32}
    old = train_recipe(validate_recipe(recipe), tmp_path / "old").package
    values[-60:] += 1.0  # inside the last 20 %: the test period
    write_series(csv, values)
    new = train_recipe(validate_recipe({**recipe, "seed": 1}), tmp_path / "new").package
    with pytest.raises(PackageError, match=r"old/package was trained on other contents of"):
        ensemble_packages([old, new], tmp_path / "ens")
    assert not (tmp_path / "ens").exists()
