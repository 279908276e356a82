"""Forecast windows over a series and chronological train/validation/test periods.

A window starting at row s reads rows [s, s + lookback) of the input columns and forecasts rows
[s + lookback, s + lookback + horizon) of the target columns. Windows are zero-copy views
(`sliding_window_view`): a split of 10,000 windows of 512 steps costs no memory until a batch
is taken from it.

Periods are consecutive row ranges [start, end). A window belongs to the period its forecast
targets lie in; a window whose targets straddle a boundary is dropped, so no training target is
ever a validation or test row. With `context: previous` (the usual protocol) a validation or test
window may still *read* rows of the period before it — that is the history a live forecast has
too; with `within` the whole window must lie inside its period.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from scaledl.config.series import SeriesConfig
from scaledl.data.dataset import ArraySet
from scaledl.data.series.table import SeriesTable
from scaledl.data.series.timeparse import parse_time
from scaledl.errors import DataError

PERIODS = ("train", "val", "test")


@dataclass(frozen=True)
class Period:
    name: str
    start: int  # first row of the period
    end: int  # one past its last row

    def __len__(self) -> int:
        return max(0, self.end - self.start)


@dataclass(frozen=True)
class Layout:
    """Which columns go in and out, and the window geometry."""

    inputs: list[int]
    targets: list[int]
    lookback: int
    horizon: int
    stride: int
    train_stride: int | None = None

    @property
    def span(self) -> int:
        return self.lookback + self.horizon


def layout_for(table: SeriesTable, config: SeriesConfig) -> Layout:
    inputs = config.inputs if config.inputs is not None else list(table.columns)
    targets = config.targets if config.targets is not None else list(inputs)
    return Layout(
        table.column_index(inputs, "input"),
        table.column_index(targets, "target"),
        config.lookback,
        config.horizon,
        config.stride,
        config.train_stride,
    )


def all_windows(table: SeriesTable, layout: Layout) -> ArraySet:
    """Every window of the whole series (views)."""
    starts = window_starts(0, len(table), layout, context_from=0)
    return take_windows(table, layout, starts)


def window_starts(
    start: int, end: int, layout: Layout, context_from: int, stride: int | None = None
) -> range:
    """Starts s of the windows whose targets lie in rows [start, end) and whose look-back
    begins at or after `context_from`; on the stride grid anchored at the period's start."""
    first_target = max(start, context_from + layout.lookback)
    first = first_target - layout.lookback
    last = end - layout.span  # last start whose final target row is end - 1
    if last < first:
        return range(0)
    return range(first, last + 1, stride or layout.stride)


def take_windows(table: SeriesTable, layout: Layout, starts: range) -> ArraySet:
    """Windows at `starts` (a range, so the result stays a view) as an ArraySet (x, y)."""
    x_all, y_all = _views(table, layout)
    if not len(starts):
        empty_x = np.zeros((0, layout.lookback, len(layout.inputs)), np.float32)
        empty_y = np.zeros((0, layout.horizon, len(layout.targets)), np.float32)
        return ArraySet(empty_x, empty_y)
    sl = slice(starts.start, starts.stop, starts.step)
    target_sl = slice(starts.start + layout.lookback, starts.stop + layout.lookback, starts.step)
    return ArraySet(x_all[sl], y_all[target_sl])


def _views(table: SeriesTable, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    values = table.values
    x_cols = values[:, layout.inputs] if layout.inputs != list(range(values.shape[1])) else values
    y_cols = values[:, layout.targets]
    if len(values) < layout.lookback or len(values) < layout.horizon:
        shape = (0, layout.lookback, len(layout.inputs))
        return np.zeros(shape, np.float32), np.zeros((0, layout.horizon, len(layout.targets)))
    # sliding_window_view appends the window axis last: (rows, cols, steps) → (rows, steps, cols)
    x_all = sliding_window_view(x_cols, layout.lookback, axis=0).transpose(0, 2, 1)
    y_all = sliding_window_view(y_cols, layout.horizon, axis=0).transpose(0, 2, 1)
    return x_all, y_all


def periods(
    table: SeriesTable, config: SeriesConfig, val_fraction: float, test_fraction: float
) -> list[Period]:
    """Train, validation and test row ranges, by date or by fraction of the rows."""
    n = len(table)
    if config.by_date:
        if table.times is None:
            raise DataError(
                "data.series.train_end/val_end split by date, but the series has no "
                "timestamp column; split by fraction (data.val_fraction, data.test_fraction)"
            )
        bounds = [
            _row_at(table, config.train_end, "train_end"),
            _row_at(table, config.val_end, "val_end"),
        ]
        bounds.append(_row_at(table, config.test_end, "test_end") if config.test_end else n)
        if not bounds[0] < bounds[1] < bounds[2] or bounds[0] <= 0:
            raise DataError(
                f"time series {table.source}: train_end {config.train_end} < val_end "
                f"{config.val_end} < test_end {config.test_end or '(end)'} must each cut the "
                f"data ({table.time_label(0)} … {table.time_label(n - 1)}) into non-empty periods"
            )
    else:
        test_rows = round(n * test_fraction)
        val_rows = round((n - test_rows) * val_fraction)
        bounds = [n - test_rows - val_rows, n - test_rows, n]
    return [
        Period("train", 0, bounds[0]),
        Period("val", bounds[0], bounds[1]),
        Period("test", bounds[1], bounds[2]),
    ]


def _row_at(table: SeriesTable, when: str | None, name: str) -> int:
    """The first row at or after `when`."""
    assert table.times is not None and when is not None
    try:
        seconds = parse_time(str(when))
    except DataError as exc:
        raise DataError(f"data.series.{name}: {exc.message}") from None
    return int(np.searchsorted(table.times, seconds, side="left"))


def split_windows(
    table: SeriesTable, layout: Layout, parts: list[Period], context: str
) -> dict[str, ArraySet]:
    """The windows of each period (see the module docstring for which windows belong)."""
    starts = split_starts(layout, parts, context)
    return {name: take_windows(table, layout, s) for name, s in starts.items()}


def split_starts(layout: Layout, parts: list[Period], context: str) -> dict[str, range]:
    """The start row of every window of each period."""
    out = {}
    for period in parts:
        train = period.name == "train"
        context_from = period.start if context == "within" or train else 0
        stride = layout.train_stride if train else None
        out[period.name] = window_starts(period.start, period.end, layout, context_from, stride)
    return out


def window_rows(starts: range, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """First and one-past-last row each window touches (look-back through horizon)."""
    first = np.asarray(starts, dtype=np.int64)
    return first, first + layout.span
