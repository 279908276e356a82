"""A file of sentences and their phrases split by sentence (`data.text.group_phrases`)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from scaledl.config.data import DataConfig
from scaledl.data.dataset import grouped_split
from scaledl.modalities import load_splits, modality
from scaledl.modalities.text.overlap import share_inside
from scaledl.modalities.text.phrases import phrase_groups
from tests.text.test_overlap import _sentences, _write


def _phrases(sentences: list[str]) -> list[str]:
    """Three phrases of each sentence, each with its number (so no other sentence holds it)."""
    return [" ".join(s.split()[a:b]) for s in sentences for a, b in ((0, 4), (1, 5), (1, 8))]


def test_a_phrase_joins_the_sentence_that_holds_it_as_whole_words() -> None:
    rows = ["good film", "a good film", "go", "a bad film", "bad", "film", "a good film"]
    groups = phrase_groups(rows)
    # "film" is in both sentences and joins one; "go" is inside "good" as letters, not as a
    # word; the repeated sentence joins the first
    assert groups.group.tolist() == [1, 1, 2, 3, 3, 1, 1]
    assert groups.heads.tolist() == [1, 2, 3]
    assert groups.members_of(np.array([3])).tolist() == [3, 4]


def test_held_out_parts_hold_whole_groups_heads_only_and_training_every_row_of_its_own() -> None:
    rng = np.random.default_rng(0)
    group = np.repeat(np.arange(0, 400, 4), 4)  # 100 groups of 4 rows, headed by their first
    y = rng.integers(0, 2, len(group))
    val, train = grouped_split(y, group, (0.2,), seed=3, stratify=True)
    heads = np.arange(0, 400, 4)
    assert set(val) <= set(heads) and len(val) == 20
    assert not set(group[train]) & set(val)  # no row of a validation sentence trains
    assert set(group[train]) | set(val) == set(heads)  # every group is used
    again = grouped_split(y, group, (0.2,), seed=3, stratify=True)
    assert np.array_equal(again[0], val)


def test_grouping_removes_seen_text_from_validation_and_keeps_its_length(tmp_path: Path) -> None:
    sentences = _sentences(150, seed=1)
    phrases = _phrases(sentences)
    train = _write(tmp_path / "sst", sentences + phrases, _sentences(40, 2))
    by_row = load_splits(
        DataConfig(source=str(train), val_fraction=0.2, text={"test_source": "dev.tsv"})
    )
    grouped = load_splits(
        DataConfig(
            source=str(train),
            val_fraction=0.2,
            text={"test_source": "dev.tsv", "group_phrases": True},
        )
    )
    assert share_inside(by_row.val.x, by_row.train.x) >= 0.5  # type: ignore[operator]
    assert share_inside(grouped.val.x, grouped.train.x) == 0.0
    assert modality(grouped.kind).seen_in_training(grouped) == 0.0
    assert set(grouped.val.x) <= set(sentences) and abs(len(grouped.val) - 30) <= 1
    assert grouped.sizes["unused"] == 3 * len(grouped.val)  # the validation sentences' phrases
    assert grouped.grouped is not None and by_row.grouped is None
    assert len(grouped.test) == 40  # a separate test file is kept as it is
    carved = load_splits(
        DataConfig(
            source=str(train), val_fraction=0.2, test_fraction=0.2, text={"group_phrases": True}
        )
    )
    assert set(carved.test.x) <= set(sentences) and set(carved.val.x) <= set(sentences)
    assert share_inside(carved.test.x, carved.train.x) == 0.0


def test_cross_fitting_folds_keep_each_group_in_one_fold() -> None:
    from scaledl.optimize.crossfit import group_fold_ids

    group = np.repeat(np.arange(0, 300, 3), 3)  # 100 groups of 3 rows, headed by their first
    head = group == np.arange(300)
    y = np.repeat(np.arange(100) % 2, 3)
    ids = group_fold_ids(y, group, head, 4, seed=1, task="classification")
    for g in range(0, 300, 3):
        assert len(set(ids[group == g])) == 1  # a sentence and its phrases share a fold
    assert sorted(np.bincount(ids[head], minlength=4).tolist()) == [25, 25, 25, 25]
    with pytest.raises(ValueError, match="no head"):
        group_fold_ids(y[3:], group[3:], head[3:] & (group[3:] != 3), 4, seed=1, task="x")


@pytest.mark.slow
def test_a_grouped_package_is_re_split_the_same_way_and_cross_fitted_by_sentence(
    tmp_path: Path,
) -> None:
    from scaledl.config.optimize import OptimizeConfig
    from scaledl.optimize.api import optimize_package
    from scaledl.optimize.context import build_context
    from scaledl.optimize.crossfit import planned_folds
    from scaledl.pipeline.train import train_recipe
    from scaledl.recipe import validate_recipe
    from tests.text.conftest import text_recipe

    sentences = _sentences(120, seed=4)
    phrases = _phrases(sentences)
    train = _write(tmp_path / "sst", sentences + phrases, _sentences(30, 5))
    recipe = text_recipe(train)
    recipe["data"]["text"]["group_phrases"] = True  # type: ignore[index]
    recipe["train"]["epochs"] = 1  # type: ignore[index]
    package = train_recipe(validate_recipe(recipe), tmp_path / "run").package
    config = OptimizeConfig(
        methods=["int8-static"],
        settings={"int8-static": {"calibrations": ["minmax"]}},
        cross_fit="2",
        max_accuracy_drop=0.5,  # a 1-epoch smoke-test model
        time_budget_min=5,
        exporter="legacy",
    )
    ctx = build_context(package, config)
    assert ctx.splits.grouped is not None  # read back from the package's lineage
    assert share_inside(ctx.splits.val.x, ctx.splits.train.x) == 0.0
    assert planned_folds(ctx) == (2, None)
    result = optimize_package(package, config, out=tmp_path / "opt")
    splits = result.ctx.splits
    assert splits.train_head is not None
    # judged on whole sentences: every training sentence once, and the validation sentences
    assert result.cross_fit["rows"] == int(splits.train_head.sum()) + len(splits.val)
    assert int(splits.train_head.sum()) < len(splits.train)  # the phrases were not judged


def test_training_on_a_phrase_split_warns_and_names_the_fix(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from scaledl.pipeline.train import _warn_if_validation_was_seen

    sentences = _sentences(100, seed=6)
    train = _write(tmp_path / "sst", sentences + _phrases(sentences), _sentences(20, 7))
    for grouped in (False, True):
        config = DataConfig(
            source=str(train), text={"test_source": "dev.tsv", "group_phrases": grouped}
        )
        splits = load_splits(config)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="scaledl.pipeline.train"):
            _warn_if_validation_was_seen(modality(splits.kind), splits)
        warned = [r.getMessage() for r in caplog.records]
        if grouped:
            assert not warned
        else:
            assert len(warned) == 1 and "data.text.group_phrases: true" in warned[0], warned


def test_rows_too_alike_to_group_are_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from scaledl.errors import DataError
    from scaledl.modalities.text import phrases

    # every pair of 80 words: no row holds another, and each row's rarest word is in dozens of
    # earlier rows, each of them checked (the quadratic search the limit stops)
    rows = [f"w{a} w{b}" for a in range(80) for b in range(80) if a != b]
    assert len(set(phrases.phrase_groups(rows).group.tolist())) == len(rows)  # all heads
    monkeypatch.setattr(phrases, "MAX_CHECKS_PER_ROW", 4)
    monkeypatch.setattr(phrases, "MIN_CHECKS", 0)
    with pytest.raises(DataError, match=r"data\.text\.group_phrases: false"):
        phrases.phrase_groups(rows)


@pytest.mark.parametrize("value", ["maybe", 2, [True], {"on": True}])
def test_a_group_phrases_that_is_not_a_boolean_is_refused_naming_the_field(
    tmp_path: Path, value: object
) -> None:
    from scaledl.errors import RecipeError
    from scaledl.recipe import validate_recipe
    from tests.text.conftest import text_recipe

    recipe = text_recipe(tmp_path / "train.tsv")
    recipe["data"]["text"]["group_phrases"] = value  # type: ignore[index]
    with pytest.raises(RecipeError, match="group_phrases"):
        validate_recipe(recipe)
