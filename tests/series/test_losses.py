"""Regression losses (train.loss): what each minimises, the classifier's refusal, and the
parent's loss carried into its fine-tunes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from scaledl.errors import RecipeError
from scaledl.train.tensors import loss_fn
from tests.series.conftest import series_recipe, series_values, write_series


def test_each_regression_loss_is_taken_on_the_standardised_scale() -> None:
    scale = np.array([10.0, 0.5])  # two targets in very different units
    y = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    out = torch.tensor([[30.0, 0.25], [-10.0, 1.5]])  # standardised errors: 3, 0.5, -1, 3
    errors = np.array([3.0, 0.5, -1.0, 3.0])
    mse = loss_fn("regression", error_scale=scale)(out, y).item()
    mae = loss_fn("regression", error_scale=scale, regression_loss="mae")(out, y).item()
    huber = loss_fn("regression", error_scale=scale, regression_loss="huber", huber_delta=1.0)(
        out, y
    ).item()
    expected_huber = np.where(np.abs(errors) <= 1.0, 0.5 * errors**2, np.abs(errors) - 0.5).mean()
    assert mse == pytest.approx((errors**2).mean())
    assert mae == pytest.approx(np.abs(errors).mean())
    assert huber == pytest.approx(expected_huber)
    assert loss_fn("regression", error_scale=scale, regression_loss="auto")(
        out, y
    ).item() == pytest.approx(mse)


def test_mae_fits_the_median_where_mse_fits_the_mean() -> None:
    """One outlying target pulls a constant fitted by MSE; MAE stays with the majority."""
    y = torch.tensor([0.0, 0.0, 0.0, 0.0, 20.0])
    fitted = {}
    for name in ("mse", "mae"):
        guess = torch.zeros(1, requires_grad=True)
        loss = loss_fn("regression", regression_loss=name)
        step = torch.optim.SGD([guess], lr=0.05)
        for _ in range(2000):
            step.zero_grad()
            loss(guess.expand(5), y).backward()
            step.step()
        fitted[name] = guess.item()
    assert fitted["mse"] == pytest.approx(4.0, abs=0.1)
    assert abs(fitted["mae"]) < 0.1


def test_a_classifier_refuses_a_regression_loss() -> None:
    with pytest.raises(RecipeError, match=r"train\.loss is 'mae'.*leave train\.loss at auto"):
        loss_fn("classification", regression_loss="mae")


def test_the_parents_loss_carries_into_its_fine_tunes(tmp_path: Path) -> None:
    from scaledl.optimize.context import parent_loss
    from scaledl.package import open_package
    from scaledl.pipeline import train_recipe
    from scaledl.recipe import validate_recipe

    csv = write_series(tmp_path / "series.csv", series_values(400))
    recipe = series_recipe(csv)
    recipe["train"] = {**recipe["train"], "epochs": 1, "loss": "huber", "huber_delta": 0.5}
    package = train_recipe(validate_recipe(recipe), tmp_path / "run").package
    assert parent_loss(open_package(package)) == {"loss": "huber", "huber_delta": 0.5}


@pytest.mark.parametrize(
    ("field", "value"), [("loss", "l2"), ("loss", 3), ("huber_delta", 0), ("huber_delta", "x")]
)
def test_a_bad_loss_setting_is_refused_naming_the_field(
    field: str, value: object, tmp_path: Path
) -> None:
    from scaledl.recipe import validate_recipe

    recipe = series_recipe(write_series(tmp_path / "s.csv", series_values(200)))
    recipe["train"] = {**recipe["train"], field: value}
    with pytest.raises(RecipeError, match=field):
        validate_recipe(recipe)
