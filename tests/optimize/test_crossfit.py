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


def test_cross_fitting_books_its_fold_parents(digits_package: Path) -> None:
    """A longer fine-tune of a near miss may not take the time the fold parents need, whether
    the user asked for cross-fitting or `auto` turned it on for a small validation split; off,
    nothing is booked."""
    from scaledl.optimize.crossfit import CrossFit
    from scaledl.optimize.search import Search

    asked = CrossFit(Search(build_context(digits_package, OptimizeConfig(cross_fit="3"))))
    booked = asked.booked()
    assert booked > 0
    assert booked == pytest.approx(3 * asked._fold_estimate())
    auto = CrossFit(Search(build_context(digits_package, OptimizeConfig())))
    assert auto.active and auto.booked() == pytest.approx(auto.folds * auto._fold_estimate())
    off = CrossFit(Search(build_context(digits_package, OptimizeConfig(cross_fit="off"))))
    assert not off.active and off.booked() == 0.0
    asked.parents = []  # trained: nothing left to book
    assert asked.booked() == 0.0


def test_a_longer_fine_tune_that_would_take_the_booked_time_is_skipped_saying_so(
    digits_package: Path,
) -> None:
    from scaledl.optimize.search import RETRY_SCALE, Search

    search = Search(build_context(digits_package, OptimizeConfig(cross_fit="3")))
    parent = search.baseline()
    config = search.spaces["prune"].configs(search.ctx)[0]
    left = search.time_left()
    child = search.structure_variant(parent, config, scale=RETRY_SCALE, booked=left)
    assert child is None and search.out_of_time
    reason = search.skipped[-1]["reason"]
    assert reason.startswith("time budget") and "for cross-fitting (--cross-fit)" in reason


def test_a_second_chance_must_leave_room_for_its_replays_on_every_fold(
    digits_package: Path,
) -> None:
    """On small data a second chance is judged on the folds too, so its estimate counts its
    replays: time for the fine-tune alone is not enough."""
    from scaledl.optimize.search import Search

    search = Search(build_context(digits_package, OptimizeConfig(cross_fit="5")))
    parent = search.baseline()
    config = search.spaces["prune"].configs(search.ctx)[0]
    one = search.book.structure_estimate(1)
    booked = search.time_left() - 2 * one  # room for one copy of a 1-epoch job, not six
    assert search.fits("alone", one, booked)
    child = search.structure_variant(parent, config, booked=booked, replays=5)
    assert child is None and search.out_of_time
    assert search.skipped[-1]["method"].startswith(config.tag())
    # asked again (the second cross-fitting pass), a skip's reason replaces the earlier one
    search.skip("cross-fitting c09", "first reason")
    search.skip("cross-fitting c09", "second reason")
    again = [s for s in search.skipped if s["method"] == "cross-fitting c09"]
    assert again == [{"method": "cross-fitting c09", "reason": "second reason"}]


def test_replay_estimates_follow_what_the_replays_took() -> None:
    from scaledl.optimize.budget import SAFETY
    from scaledl.optimize.crossfit import calibrated, replay_scale

    assert calibrated(40.0, 0.0, 0.0) == 40.0  # nothing measured yet: the first guess
    assert calibrated(40.0, 80.0, 32.0) == pytest.approx(SAFETY * 0.4 * 40.0)
    assert calibrated(40.0, 80.0, 1.0) == pytest.approx(SAFETY * 0.25 * 40.0)  # bounded
    assert calibrated(40.0, 1.0, 80.0) == pytest.approx(SAFETY * 4.0 * 40.0)
    assert replay_scale(0.0, 0.0) == 1.0 and replay_scale(80.0, 32.0) == pytest.approx(0.4)


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
    # judged fastest first, so the order follows this machine's timings
    replays = result.cross_fit.pop("replays")
    assert {**result.cross_fit, "candidates": sorted(result.cross_fit["candidates"])} == {
        "folds": 3,
        "rows": non_test,
        "candidates": [c.id for c in result.candidates[1:] if c.ok],
    }
    # the scale applied to later guesses: what the replays took against what was guessed
    assert replays["took_s"] > 0 and 0.25 <= replays["scale"] <= 4.0
    if replays["guessed_s"] > 0.1:  # both are recorded to the millisecond
        expected = min(max(replays["took_s"] / replays["guessed_s"], 0.25), 4.0)
        assert replays["scale"] == pytest.approx(expected, abs=0.01)
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
    # the bound that ships predicts one more run: never below the pooled rows' bound
    assert entry["cross_fit"]["between_runs_sd"] >= 0.0
    assert entry["drop"]["upper"] >= entry["cross_fit"]["pooled_upper"] - 1e-6
    parent = result.candidates[0]
    assert parent.cross_fit is None and parent.drop is not None
    assert parent.drop.rows == len(ctx.splits.val)


def _with_recipe_train(source: Path, dest: Path, train: object) -> Path:
    """A copy of a real package whose recipe.yaml `train` section is replaced (checksums
    rewritten, as a liar would); its manifest still records the original training time."""
    import hashlib
    import shutil

    import yaml

    pkg = Path(shutil.copytree(source, dest))
    recipe = yaml.safe_load((pkg / "recipe.yaml").read_text())
    recipe["train"] = train
    (pkg / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    manifest = json.loads((pkg / "manifest.json").read_text())
    manifest["files"]["recipe.yaml"] = hashlib.sha256(
        (pkg / "recipe.yaml").read_bytes()
    ).hexdigest()
    (pkg / "manifest.json").write_text(json.dumps(manifest))
    return pkg


@pytest.mark.parametrize("train", [{"epochs": "many"}, ["not", "a", "section"], {"lr": -1}])
def test_a_malformed_train_section_skips_cross_fitting_naming_it(
    digits_package: Path, tmp_path: Path, train: object
) -> None:
    pkg = _with_recipe_train(digits_package, tmp_path / "pkg", train)
    ctx = build_context(pkg, OptimizeConfig(cross_fit="3"))
    folds, reason = planned_folds(ctx)
    assert folds == 0 and reason is not None and "`train` section" in reason


@pytest.mark.slow
def test_a_recipe_that_trains_far_longer_than_recorded_stops_within_the_budget(
    digits_package: Path, tmp_path: Path
) -> None:
    import time

    # the manifest says a few seconds of training; the recipe now asks for 2,000 epochs
    pkg = _with_recipe_train(
        digits_package, tmp_path / "pkg", {"epochs": 2000, "batch_size": 64, "lr": 0.005}
    )
    budget_min = 1.0  # the search leaves enough for the two folds the record promises
    config = OptimizeConfig(
        cross_fit="2",
        methods=["int8-static"],
        settings={"int8-static": {"calibrations": ["minmax"]}},
        time_budget_min=budget_min,
        exporter="legacy",
    )
    start = time.monotonic()
    result = optimize_package(pkg, config, out=tmp_path / "opt")
    assert time.monotonic() - start <= 2 * budget_min * 60 + 10  # generous on a busy machine
    reasons = [s["reason"] for s in result.skipped if s["method"] == "cross-fitting"]
    assert any("ran past the time left" in r for r in reasons), result.skipped
    assert result.cross_fit == {} and all(c.cross_fit is None for c in result.candidates)
