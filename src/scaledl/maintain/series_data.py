"""Maintenance data for a forecaster: the series goes on in time, it is not pooled.

- The **new data** is the series' continuation (a CSV/Parquet with the same columns), split by
  time: its newest `test_fraction` is the period both versions are judged on, the
  `val_fraction` before it picks the fine-tune's best epoch.
- The **union** is one file: the old series up to the end of its test period (rows of the file
  past a `test_end` were never the live version's data) followed by the new rows (rows at or
  before that end are dropped and counted), split by date at the new data's validation and
  test periods. The new version learns from all the history before its judging period — including
  periods earlier versions were judged on: a forecaster must learn the newest behaviour.
- The **evaluation set** is the newest period's windows (their look-back may reach into the
  rows before, as in training); the old test period is history the new version trains on, so it
  cannot judge it (a trusted `--eval-data` series can).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scaledl.config.data import DataConfig
from scaledl.config.maintain import SplitConfig
from scaledl.data.dataset import DataSplits
from scaledl.data.series.table import SeriesTable
from scaledl.data.series.timeparse import format_time
from scaledl.errors import DataError
from scaledl.fsio import atomic_write_text


def is_series(splits: DataSplits) -> bool:
    return splits.kind == "series"


def new_series_config(spec: str, template: DataConfig, split: SplitConfig) -> DataConfig:
    """The old data's reading of a series, split by fraction of the new rows (by time)."""
    assert template.series is not None
    series = template.series.model_copy(
        update={"train_end": None, "val_end": None, "test_end": None}
    )
    return template.model_copy(
        update={
            "source": spec.strip(),
            "series": series,
            "val_fraction": split.val_fraction,
            "test_fraction": split.test_fraction,
        }
    )


def write_series_union(
    path: Path, old: DataSplits, new: DataSplits, template: DataConfig
) -> tuple[DataConfig, int]:
    """Old rows + the new rows after them as one CSV, and the DataConfig that splits it at the
    new data's validation and test periods; returns how many new rows were dropped as overlap."""
    old_table, new_table = _table(old, "old"), _table(new, "new")
    if old_table.times is None or new_table.times is None:
        raise DataError("maintaining a forecaster needs timestamped series (data.series.timestamp)")
    columns = old_table.columns
    index = new_table.column_index(columns, "the old series'")
    # the old series ends with its test period: rows of the file after `test_end` were never
    # part of the live version's data, and the new rows continue the series from there
    used = _end_of_periods(old)
    old_end = int(old_table.times[used - 1])
    keep = new_table.times > old_end
    dropped = int((~keep).sum())
    if not keep.any():
        raise DataError(
            f"--new-data {new_table.source} ends at {format_time(int(new_table.times[-1]))}, "
            f"not after the old series ({format_time(old_end)}); give newer rows"
        )
    _no_gap(new_table, int(new_table.times[keep][0]), old_end, old_table.step_seconds, template)
    times = np.concatenate([old_table.times[:used], new_table.times[keep]])
    values = np.concatenate([old_table.values[:used], new_table.values[keep][:, index]])
    timestamp = template.series.timestamp if template.series is not None else "date"
    _write_csv(path.with_suffix(".csv"), str(timestamp), columns, times, values)
    val_start, test_start = (_period_start(new, name, new_table) for name in ("val", "test"))
    assert template.series is not None
    series = template.series.model_copy(
        update={"train_end": val_start, "val_end": test_start, "test_end": None}
    )
    config = template.model_copy(
        update={"source": str(path.with_suffix(".csv").resolve()), "series": series}
    )
    return config, dropped


def _table(splits: DataSplits, what: str) -> SeriesTable:
    table = getattr(splits, "table", None)
    if table is None:
        raise DataError(f"the {what} data is not a time series")
    return table


def _no_gap(
    new: SeriesTable, first: int, old_end: int, step: float | None, template: DataConfig
) -> None:
    """The new rows must go on where the old series ended: a gap between them would otherwise
    be reported by the row numbers of the union file, a file the user never wrote."""
    fills = template.series is not None and template.series.fill != "none"
    if step is None or fills or first - old_end <= step:
        return
    missing = round((first - old_end) / step) - 1
    raise DataError(
        f"--new-data {new.source} starts at {format_time(first)}, {missing} step(s) after the "
        f"live version's series ends ({format_time(old_end)}); give the rows in between: the "
        "new data must continue the series"
    )


def _end_of_periods(splits: DataSplits) -> int:
    """One past the last row a split's periods use (its test period's end)."""
    return max(p.end for p in splits.periods)  # type: ignore[attr-defined]


def _period_start(splits: DataSplits, name: str, table: SeriesTable) -> str:
    period = next(p for p in splits.periods if p.name == name)  # type: ignore[attr-defined]
    assert table.times is not None
    return format_time(int(table.times[period.start]))


def _write_csv(
    path: Path, timestamp: str, columns: list[str], times: np.ndarray, values: np.ndarray
) -> None:
    lines = [",".join([timestamp, *columns])]
    for when, row in zip(times, values, strict=True):
        cells = ["" if np.isnan(v) else repr(float(v)) for v in row]
        lines.append(",".join([format_time(int(when)), *cells]))
    atomic_write_text(path, "\n".join(lines) + "\n")
