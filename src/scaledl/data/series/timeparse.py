"""Timestamps as int64 seconds (UTC, or naive local time taken as is) and frequency strings."""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING

import numpy as np

from scaledl.errors import DataError

if TYPE_CHECKING:
    from scaledl.data.series.table import Problems

_UNITS = {
    "s": 1,
    "sec": 1,
    "min": 60,
    "t": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
    "w": 7 * 86400,
    "week": 7 * 86400,
}
_FREQ = re.compile(r"^\s*(\d+)?\s*([a-zA-Z]+)\s*$")


def parse_frequency(text: str) -> int:
    """'1h', '15min', 'd', '30s' → seconds."""
    match = _FREQ.match(text)
    unit = match.group(2).lower().rstrip("s") if match else ""
    unit = {"": "s", "mi": "min", "ho": "hour", "da": "day", "wee": "week"}.get(unit, unit)
    if match is None or unit not in _UNITS:
        raise DataError(
            f"data.series.frequency {text!r} is not a frequency; e.g. 1h, 15min, 30s, 1d, 1w"
        )
    count = int(match.group(1) or 1)
    if count < 1:
        raise DataError(f"data.series.frequency {text!r} must be positive")
    return count * _UNITS[unit]


def parse_time(text: str) -> int:
    """An ISO-8601 date or date-time (a time zone offset is applied) → seconds since 1970."""
    value = text.strip()
    try:
        stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise DataError(
            f"{text!r} is not an ISO date or date-time (e.g. 2017-06-26 or 2017-06-26 13:00)"
        ) from None
    return _seconds(stamp)


def _seconds(stamp: dt.datetime) -> int:
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.UTC).replace(tzinfo=None)
    return int((stamp - dt.datetime(1970, 1, 1)).total_seconds())


def parse_times(
    cells: list[object], first_line: int, problems: Problems, column: str
) -> np.ndarray:
    """Every timestamp cell → int64 seconds; unparseable cells are reported by row."""
    out = np.zeros(len(cells), np.int64)
    fast = _vectorized(cells)
    if fast is not None:
        return fast
    for i, cell in enumerate(cells):
        try:
            if isinstance(cell, dt.datetime):
                out[i] = _seconds(cell)
            elif isinstance(cell, dt.date):
                out[i] = _seconds(dt.datetime(cell.year, cell.month, cell.day))
            elif isinstance(cell, int | float) and not isinstance(cell, bool):
                out[i] = int(cell)  # numbers: seconds since 1970
            else:
                out[i] = parse_time(str(cell if cell is not None else ""))
        except (DataError, ValueError, OverflowError):
            problems.add(
                f"row {i + first_line}, column {column!r}: {str(cell)[:40]!r} is not a time"
            )
    return out


def _vectorized(cells: list[object]) -> np.ndarray | None:
    """numpy's parser for the common case of plain ISO strings without a time zone."""
    if not cells or not all(isinstance(c, str) for c in cells):
        return None
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # time zones: numpy warns; the slow path applies them
            parsed = np.array(cells, dtype="datetime64[s]")
    except (ValueError, TypeError, UserWarning, DeprecationWarning):
        return None
    if np.isnat(parsed).any():
        return None
    return parsed.astype(np.int64)


def format_time(seconds: int) -> str:
    return str(np.datetime64(int(seconds), "s")).replace("T", " ")
