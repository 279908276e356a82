"""Read a table of timestamped values (CSV/TSV/Parquet) and check it as a time series.

Problems a forecast must not silently absorb are reported by row (the file's line numbers):
empty or non-numeric cells, unparseable, duplicate or out-of-order timestamps, and gaps (a step
longer than the series' frequency). `fill` and `sort` in `data.series` say how to repair the
repairable ones; duplicates are always an error (which of two readings is right is not ours to
guess).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scaledl.config.series import SeriesConfig
from scaledl.data.series.timeparse import format_time, parse_frequency, parse_times
from scaledl.errors import DataError

MAX_LISTED = 8  # problems named one by one; the rest are counted


@dataclass
class SeriesTable:
    """A checked series: values (rows, columns) float32, timestamps (rows,) int64 seconds."""

    values: np.ndarray
    columns: list[str]
    times: np.ndarray | None  # None: no timestamp column (equally spaced rows)
    step_seconds: float | None
    source: str
    filled: int = 0  # cells filled (NaN cells + inserted rows × columns)
    inserted: int = 0  # rows inserted into gaps

    def __len__(self) -> int:
        return len(self.values)

    def column_index(self, names: list[str], what: str) -> list[int]:
        missing = [n for n in names if n not in self.columns]
        if missing:
            raise DataError(
                f"time series {self.source}: {what} column(s) {missing} not found; "
                f"value columns are {self.columns}"
            )
        return [self.columns.index(n) for n in names]

    def time_label(self, row: int) -> str:
        if self.times is None:
            return f"row {row}"
        return format_time(int(self.times[row]))


class Problems:
    """Collects problems by row; raises one DataError listing the first few."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[str] = []
        self.count = 0

    def add(self, text: str) -> None:
        self.count += 1
        if len(self.items) < MAX_LISTED:
            self.items.append(text)

    def raise_if_any(self, hint: str) -> None:
        if not self.count:
            return
        more = (
            f"; … and {self.count - len(self.items)} more" if self.count > len(self.items) else ""
        )
        raise DataError(
            f"time series {self.source}: {self.count} problem(s): "
            + "; ".join(self.items)
            + more
            + f" ({hint})"
        )


def read_series(path: Path, config: SeriesConfig) -> SeriesTable:
    """The file as a checked SeriesTable (repaired as far as `config` allows)."""
    from scaledl.data.tables import read_columns

    columns, rows, first_line = read_columns(path)
    if not rows:
        raise DataError(f"time series {path} has a header but no rows")
    time_col = config.timestamp
    if time_col is not None and time_col not in columns:
        raise DataError(
            f"time series {path} has no timestamp column {time_col!r}; columns are {columns} "
            "(set data.series.timestamp, or null for equally spaced rows)"
        )
    value_cols = [c for c in columns if c != time_col]
    if not value_cols:
        raise DataError(f"time series {path} has no value columns besides {time_col!r}")
    problems = Problems(str(path))
    values = _values(rows, columns, value_cols, first_line, problems, config.fill != "none")
    times = None
    if time_col is not None:
        cells = [row[columns.index(time_col)] if len(row) == len(columns) else None for row in rows]
        times = parse_times(cells, first_line, problems, time_col)
    problems.raise_if_any("fix the file, or set data.series.fill: ffill|interpolate")
    table = SeriesTable(values, value_cols, times, None, str(path))
    if times is not None:
        table = _order(table, first_line, config)
        table = _regular(table, first_line, config)
    if config.fill != "none":
        table.filled += fill_missing(table.values, config.fill)
    return table


def _values(
    rows: list[list[object]],
    columns: list[str],
    value_cols: list[str],
    first_line: int,
    problems: Problems,
    allow_nan: bool,
) -> np.ndarray:
    index = [columns.index(c) for c in value_cols]
    out = np.empty((len(rows), len(index)), np.float32)
    for r, row in enumerate(rows):
        line = r + first_line
        if len(row) != len(columns):
            problems.add(f"row {line}: {len(row)} cells, the header has {len(columns)}")
            out[r] = np.nan
            continue
        for j, c in enumerate(index):
            out[r, j] = _cell(row[c], value_cols[j], line, problems, allow_nan)
    return out


def _cell(cell: object, column: str, line: int, problems: Problems, allow_nan: bool) -> float:
    if cell is None or (isinstance(cell, str) and cell.strip() in ("", "nan", "NaN", "NA")):
        if not allow_nan:
            problems.add(f"row {line}, column {column!r}: empty (NaN)")
        return math.nan
    try:
        value = float(cell)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        problems.add(f"row {line}, column {column!r}: {str(cell)[:40]!r} is not a number")
        return math.nan
    if math.isnan(value):
        if not allow_nan:
            problems.add(f"row {line}, column {column!r}: NaN")
        return math.nan
    if not math.isfinite(value) or abs(value) > 3.0e38:
        problems.add(f"row {line}, column {column!r}: {cell!r} is infinite or too large")
        return math.nan
    return value


def _order(table: SeriesTable, first_line: int, config: SeriesConfig) -> SeriesTable:
    """Report (or, with `sort`, repair) out-of-order rows; duplicates are always reported."""
    assert table.times is not None
    times = table.times
    problems = Problems(table.source)
    steps = np.diff(times)
    if (steps < 0).any() and config.sort:
        order = np.argsort(times, kind="stable")
        table.values, table.times = table.values[order], times[order]
        lines = order + first_line  # keep naming rows by their line in the file
        times = table.times
        steps = np.diff(times)
    else:
        lines = np.arange(len(times)) + first_line
        for i in np.flatnonzero(steps < 0):
            problems.add(
                f"row {lines[i + 1]}: timestamp {format_time(int(times[i + 1]))} is before "
                f"row {lines[i]}'s {format_time(int(times[i]))} (unsorted)"
            )
    for i in np.flatnonzero(steps == 0):
        problems.add(
            f"rows {lines[i]} and {lines[i + 1]}: duplicate timestamp {format_time(int(times[i]))}"
        )
    problems.raise_if_any("sort the rows (or set data.series.sort: true) and remove duplicates")
    return table


def _regular(table: SeriesTable, first_line: int, config: SeriesConfig) -> SeriesTable:
    """Find the step between rows; report gaps, or insert empty rows for `fill` to repair."""
    assert table.times is not None
    times = table.times
    if len(times) < 2:
        raise DataError(f"time series {table.source} has {len(times)} row; need at least 2")
    steps = np.diff(times)
    if config.frequency is not None:
        step = parse_frequency(config.frequency)
    else:
        uniq, counts = np.unique(steps, return_counts=True)
        step = int(uniq[np.argmax(counts)])
    table.step_seconds = float(step)
    bad = np.flatnonzero(steps != step)
    if not len(bad):
        return table
    problems = Problems(table.source)
    for i in bad:
        if steps[i] % step or config.fill == "none":
            what = f"{steps[i] // step - 1} step(s) missing" if steps[i] % step == 0 else ""
            problems.add(
                f"between rows {i + first_line} ({format_time(int(times[i]))}) and "
                f"{i + 1 + first_line} ({format_time(int(times[i + 1]))}): "
                + (what or f"a step of {steps[i]} s is not a multiple of {step} s")
            )
    problems.raise_if_any(
        f"the series steps by {step} s; fill the gaps, set data.series.fill, or set "
        "data.series.frequency"
    )
    return _insert_rows(table, step)


def _insert_rows(table: SeriesTable, step: int) -> SeriesTable:
    assert table.times is not None
    times = table.times
    full = np.arange(times[0], times[-1] + step, step, dtype=np.int64)
    values = np.full((len(full), table.values.shape[1]), np.nan, np.float32)
    values[(times - times[0]) // step] = table.values
    table.inserted = len(full) - len(times)  # their cells are counted when filled
    table.values, table.times = values, full
    return table


def fill_missing(values: np.ndarray, how: str) -> int:
    """Fill NaNs in place, column by column; leading NaNs take the first value. Returns how
    many cells were filled."""
    filled = 0
    for j in range(values.shape[1]):
        col = values[:, j]
        nan = np.isnan(col)
        if not nan.any():
            continue
        if nan.all():
            raise DataError(f"column {j} holds no values at all; nothing to fill from")
        good = np.flatnonzero(~nan)
        if how == "interpolate":
            col[nan] = np.interp(np.flatnonzero(nan), good, col[good])
        else:
            last = np.maximum.accumulate(np.where(nan, 0, np.arange(len(col))))
            last[: good[0]] = good[0]
            col[:] = col[last]
        filled += int(nan.sum())
    return filled
