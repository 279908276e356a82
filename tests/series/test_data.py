"""Windows, chronological splits (no leakage), training-period scaling and bad series input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scaledl.data import DataConfig
from scaledl.errors import DataError, RecipeError
from scaledl.modalities import load_splits, modality
from scaledl.recipe import validate_recipe
from tests.conftest import SHARED_DATASETS
from tests.series.conftest import COLUMNS, series_recipe, series_values, write_series

ETTH1 = SHARED_DATASETS / "etth1" / "ETTh1.csv"


def _config(path: Path, **series: object) -> DataConfig:
    base = {"lookback": 48, "horizon": 12}
    return DataConfig(source=str(path), series={**base, **series}, val_fraction=0.2)


def test_windows_are_the_rows_they_claim(series_csv: Path) -> None:
    splits = load_splits(_config(series_csv), task="regression")
    values = series_values(600).astype(np.float32)
    table_values = np.round(values, 4)
    for name in ("train", "val", "test"):
        part, starts = getattr(splits, name), splits.starts[name]
        assert part.x.shape[1:] == (48, 3) and part.y.shape[1:] == (12, 3)
        assert len(part) == len(starts)
        for i in (0, len(part) - 1):
            s = starts[i]
            np.testing.assert_allclose(part.x[i], table_values[s : s + 48], atol=1e-3)
            np.testing.assert_allclose(part.y[i], table_values[s + 48 : s + 60], atol=1e-3)
    # windows are views of the series, not copies
    assert not splits.train.x.flags.owndata


def test_no_test_timestamp_is_inside_any_training_window(series_csv: Path) -> None:
    splits = load_splits(_config(series_csv), task="regression")
    span = 48 + 12
    train_rows = set()
    for s in splits.starts["train"]:
        train_rows.update(range(s, s + span))
    test_targets = {r for s in splits.starts["test"] for r in range(s + 48, s + span)}
    val_targets = {r for s in splits.starts["val"] for r in range(s + 48, s + span)}
    assert not train_rows & test_targets
    assert not train_rows & val_targets
    times = splits.table.times
    assert times[max(train_rows)] < times[min(val_targets)] < times[min(test_targets)]
    # the periods are consecutive and every training window ends before validation starts
    train, val, test = splits.periods
    assert train.end == val.start and val.end == test.start
    assert max(train_rows) < val.start


def test_windows_straddling_a_boundary_are_dropped(series_csv: Path) -> None:
    splits = load_splits(_config(series_csv), task="regression")
    train, val, _ = splits.periods
    last_train = splits.starts["train"][-1]
    assert last_train + 60 <= train.end  # its targets end inside the training period
    # the usual protocol: a validation window's look-back may read the training period …
    assert splits.starts["val"][0] == val.start - 48
    within = load_splits(_config(series_csv, context="within"), task="regression")
    # … unless the windows must lie wholly inside their period
    assert within.starts["val"][0] == val.start
    assert len(within.val) == len(splits.val) - 48


def test_scaling_statistics_come_from_the_training_period(tmp_path: Path) -> None:
    values = series_values(600)
    a = write_series(tmp_path / "a.csv", values)
    changed = values.copy()
    changed[400:] *= 50.0  # validation and test rows only
    b = write_series(tmp_path / "b.csv", changed)
    unit = modality("series")
    spec_a = unit.fit(load_splits(_config(a), task="regression"))
    spec_b = unit.fit(load_splits(_config(b), task="regression"))
    assert load_splits(_config(a), task="regression").periods[0].end == 384  # 600 − 120 − 96
    assert spec_a.mean == spec_b.mean and spec_a.std == spec_b.std
    np.testing.assert_allclose(spec_a.mean, values[:384].mean(axis=0), rtol=1e-4)


def test_split_by_date_and_stride(series_csv: Path) -> None:
    config = _config(series_csv, train_end="2021-01-15", val_end="2021-01-20 12:00", train_stride=4)
    splits = load_splits(config, task="regression")
    train, val, test = splits.periods
    assert (train.end, val.end, test.end) == (14 * 24, 19 * 24 + 12, 600)
    assert splits.starts["train"].step == 4 and splits.starts["test"].step == 1


def test_etth1_usual_protocol_window_counts() -> None:
    if not ETTH1.is_file():
        pytest.skip(f"the ETTh1 data set is not at {ETTH1}")
    config = DataConfig(
        source=str(ETTH1),
        series={
            "lookback": 336,
            "horizon": 96,
            "train_end": "2017-06-26",
            "val_end": "2017-10-24",
            "test_end": "2018-02-21",
        },
    )
    splits = load_splits(config, task="regression")
    # 12/4/4 months of 30 days: 8,640 / 2,880 / 2,880 hourly rows; every test window counted
    assert [(p.start, p.end) for p in splits.periods] == [(0, 8640), (8640, 11520), (11520, 14400)]
    assert splits.sizes == {"train": 8640 - 336 - 96 + 1, "val": 2785, "test": 2785}


def test_unquoted_dates_in_a_recipe_or_a_set_split_like_quoted_ones(
    series_csv: Path, tmp_path: Path
) -> None:
    """YAML reads `train_end: 2021-01-15` as a date, not text: the split is the same."""
    from scaledl.recipe import load_recipe

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"name: s\ndata:\n  source: {series_csv}\n  series:\n    lookback: 48\n"
        "    horizon: 12\n    train_end: 2021-01-15\n    val_end: 2021-01-20 12:00:00\n"
        "model: {family: mlp}\n"
    )
    loaded = load_recipe(recipe, ["data.series.test_end=2021-01-24"]).data
    assert loaded.series is not None
    assert (loaded.series.train_end, loaded.series.val_end, loaded.series.test_end) == (
        "2021-01-15",
        "2021-01-20 12:00:00",
        "2021-01-24",
    )
    quoted = _config(
        series_csv, train_end="2021-01-15", val_end="2021-01-20 12:00", test_end="2021-01-24"
    )
    periods = [(p.start, p.end) for p in load_splits(loaded, task="regression").periods]
    assert periods == [(p.start, p.end) for p in load_splits(quoted, task="regression").periods]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda v, t: (v, np.delete(t, 100)), "between rows 101 .* 1 step\\(s\\) missing"),
        (lambda v, t: (v, np.insert(t[:-1], 50, t[50])), "rows 52 and 53: duplicate timestamp"),
        (
            lambda v, t: (v, t[[*range(10), 11, 10, *range(12, len(t))]]),
            "row 13: timestamp .* is before row 12.s .* \\(unsorted\\)",
        ),
        (lambda v, t: (_nan(v, 30, 2), t), "row 32, column 'price': empty"),
    ],
    ids=["gap", "duplicate", "unsorted", "nan"],
)
def test_bad_series_are_reported_by_row(tmp_path: Path, edit: object, message: str) -> None:
    values = series_values(300)
    times = np.datetime64("2021-01-01T00:00:00", "s") + np.arange(300) * np.timedelta64(1, "h")
    new_values, new_times = edit(values, times)  # type: ignore[operator]
    path = write_series(tmp_path / "bad.csv", new_values[: len(new_times)], times=new_times)
    with pytest.raises(DataError, match=message):
        load_splits(_config(path), task="regression")


def _nan(values: np.ndarray, row: int, col: int) -> np.ndarray:
    out = values.copy()
    out[row, col] = np.nan
    return out


def test_fill_and_sort_repair_only_when_asked(tmp_path: Path) -> None:
    values = series_values(300)
    times = np.datetime64("2021-01-01T00:00:00", "s") + np.arange(300) * np.timedelta64(1, "h")
    holes = _nan(values, 30, 2)
    path = write_series(
        tmp_path / "holes.csv", holes[np.r_[0:100, 101:300]], times=times[np.r_[0:100, 101:300]]
    )
    splits = load_splits(_config(path, fill="interpolate"), task="regression")
    table = splits.table
    assert len(table) == 300 and table.inserted == 1 and table.filled == 1 + 3
    assert np.isfinite(table.values).all()
    expected = (values[99, 0] + values[101, 0]) / 2
    assert table.values[100, 0] == pytest.approx(expected, abs=1e-3)
    ffill = load_splits(_config(path, fill="ffill"), task="regression").table
    assert ffill.values[30, 2] == pytest.approx(values[29, 2], abs=1e-3)
    shuffled = write_series(tmp_path / "shuffled.csv", values[::-1].copy(), times=times[::-1])
    sorted_ = load_splits(_config(shuffled, sort=True), task="regression").table
    np.testing.assert_allclose(sorted_.values[:5], values[:5], atol=1e-3)


def test_series_input_mistakes_name_the_fix(series_csv: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no timestamp column 'time'"):
        load_splits(_config(series_csv, timestamp="time"), task="regression")
    with pytest.raises(DataError, match="target column\\(s\\) \\['volume'\\] not found"):
        load_splits(_config(series_csv, targets=["volume"]), task="regression")
    with pytest.raises(DataError, match="regression task"):
        load_splits(_config(series_csv), task="classification")
    with pytest.raises(DataError, match="holds no whole window"):
        load_splits(_config(series_csv, lookback=300, horizon=100), task="regression")
    text = tmp_path / "text.csv"
    text.write_text("date,load\n2021-01-01 00:00,1\n2021-01-01 01:00,abc\n")
    with pytest.raises(DataError, match="row 3, column 'load': 'abc' is not a number"):
        load_splits(_config(text), task="regression")
    with pytest.raises(RecipeError, match="train_end and val_end"):
        validate_recipe(series_recipe(series_csv, train_end="2021-01-10"))


def test_recipes_on_series_are_regression_with_forecast_knobs(series_csv: Path) -> None:
    recipe = validate_recipe(series_recipe(series_csv))
    assert recipe.task == "regression"
    with pytest.raises(RecipeError, match=r"on a time series.*valid knobs: decomposition"):
        validate_recipe(
            {**series_recipe(series_csv), "model": {"family": "mlp", "batch_norm": True}}
        )
    assert COLUMNS == ["load", "temp", "price"]
    pmf = {"family": "rnn", "decoder": "pmf"}
    assert validate_recipe({**series_recipe(series_csv), "model": pmf}).task == "regression"
    with pytest.raises(RecipeError, match=r"decoder pmf .*set channel_independent: true"):
        validate_recipe(
            {**series_recipe(series_csv), "model": {**pmf, "channel_independent": False}}
        )
    with pytest.raises(RecipeError, match=r"splits hidden between position and channel"):
        validate_recipe({**series_recipe(series_csv), "model": {**pmf, "hidden": 1}})
    with pytest.raises(RecipeError, match=r"decoder: Input should be 'direct' or 'pmf'"):
        validate_recipe({**series_recipe(series_csv), "model": {**pmf, "decoder": "seq2seq"}})
    # a bad value of a knob every form has is reported as the family's own form sees it
    from pydantic import ValidationError

    from scaledl.config.models import ModelConfig

    with pytest.raises(ValidationError, match=r"model knobs for 'rnn': field 'cell'") as caught:
        ModelConfig.model_validate({"family": "rnn", "cell": "elman"})
    assert "time series" not in str(caught.value)


def test_parquet_series_with_native_timestamps(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    values = series_values(300)
    times = np.datetime64("2021-01-01T00:00:00", "s") + np.arange(300) * np.timedelta64(1, "h")
    table = pa.table(
        {
            "date": pa.array(times.astype("datetime64[s]")),
            **{c: values[:, i] for i, c in enumerate(COLUMNS)},
        }
    )
    pq.write_table(table, tmp_path / "s.parquet")
    splits = load_splits(_config(tmp_path / "s.parquet"), task="regression")
    assert splits.table.step_seconds == 3600
    np.testing.assert_allclose(splits.train.x[0], values[:48], rtol=1e-6)
