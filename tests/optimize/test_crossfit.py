"""Cross-fitting: on a small data set the budget's bound is computed over every non-test row."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scaledl.config.optimize import OptimizeConfig
from scaledl.errors import UsageError
from scaledl.optimize.api import optimize_package
from scaledl.optimize.context import build_context
from scaledl.optimize.crossfit import fold_ids, planned_folds
from scaledl.validation import validate


def test_each_class_is_spread_evenly_over_the_folds() -> None:
    y = np.repeat(np.arange(4), [50, 7, 23, 1])
    ids = fold_ids(y, 5, seed=3, task="classification")
    assert set(ids) == set(range(5))
    for label in range(4):
        counts = np.bincount(ids[y == label], minlength=5)
        assert counts.max() - counts.min() <= 1, (label, counts)
    sizes = np.bincount(ids, minlength=5)
    assert sizes.max() - sizes.min() <= 1, sizes
    assert np.array_equal(ids, fold_ids(y, 5, seed=3, task="classification"))  # reproducible
    assert not np.array_equal(ids, fold_ids(y, 5, seed=4, task="classification"))


def test_regression_rows_are_cut_into_equal_folds() -> None:
    ids = fold_ids(np.linspace(0, 1, 103), 4, seed=0, task="regression")
    assert sorted(np.bincount(ids).tolist()) == [25, 26, 26, 26]


@pytest.mark.parametrize("value", ["1", "11", "many", "-3", ""])
def test_a_bad_fold_count_is_refused_naming_the_valid_values(value: str) -> None:
    with pytest.raises(UsageError, match="cross_fit"):
        validate(OptimizeConfig, {"cross_fit": value}, "scaledl optimize", UsageError)


def test_auto_cross_fits_a_small_validation_split_and_off_never(digits_package: Path) -> None:
    small = build_context(digits_package, OptimizeConfig())
    assert len(small.splits.val) < 1000
    assert planned_folds(small) == (5, None)
    off = build_context(digits_package, OptimizeConfig(cross_fit="off"))
    assert planned_folds(off) == (0, None)
    three = build_context(digits_package, OptimizeConfig(cross_fit="3"))
    assert planned_folds(three) == (3, None)


@pytest.mark.slow
def test_candidates_are_judged_on_every_non_test_row(digits_package: Path, tmp_path: Path) -> None:
    config = OptimizeConfig(
        cross_fit="3",
        methods=["int8-static"],
        settings={"int8-static": {"calibrations": ["minmax"]}},
        time_budget_min=5,
        exporter="legacy",
    )
    result = optimize_package(digits_package, config, out=tmp_path / "opt")
    ctx = result.ctx
    non_test = len(ctx.splits.train) + len(ctx.splits.val)
    assert result.cross_fit == {
        "folds": 3,
        "rows": non_test,
        "candidates": [c.id for c in result.candidates[1:] if c.ok],
    }
    judged = [c for c in result.candidates[1:] if c.ok]
    assert judged, result.skipped
    for c in judged:
        assert c.drop is not None and c.drop.rows == non_test
        assert c.cross_fit is not None and len(c.cross_fit["fold_points"]) == 3
        assert c.cross_fit["validation_only"]["rows"] == len(ctx.splits.val)
    frontier = json.loads((tmp_path / "opt" / "frontier.json").read_text())
    assert frontier["selection"]["cross_fit"]["rows"] == non_test
    entry = next(e for e in frontier["candidates"] if e["id"] == judged[0].id)
    assert entry["drop"]["rows"] == non_test and entry["cross_fit"]["folds"] == 3
    parent = result.candidates[0]
    assert parent.cross_fit is None and parent.drop is not None
    assert parent.drop.rows == len(ctx.splits.val)
