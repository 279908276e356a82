"""`/predict` for forecasters: JSON look-back windows in, forecasts in original units out.

Accepted bodies (`Content-Type: application/json`), values in the units of the training file:

- `{"rows": [{"date": "2018-02-20 01:00:00", "HUFL": 5.8, …}, …]}` — observations by column
  name, oldest first; the newest `lookback` rows form the window. With a timestamp column the
  rows must be increasing and one step apart (a gap or a disorder is named by row).
- `{"instances": [window, …]}` or `[window, …]` — each window `lookback` × `inputs` numbers, as
  the V2 `/infer` input `[-1, lookback, inputs]` takes them.

The server parses the JSON (big bodies in a parser process) and hands the list to
`windows_from_json`. Answer per window: `{"forecast": {"OT": [h1, h2, …], …}, "horizon": H}`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scaledl.contract import SeriesSpec
from scaledl.errors import DataError


def windows_from_json(spec: SeriesSpec, rows: Any) -> np.ndarray:
    """The JSON rows the server parsed (`rows` or `instances`, or the body's list): objects
    of column: value are observations, one window; numbers are whole windows."""
    if isinstance(rows, list) and any(isinstance(r, dict) for r in rows):
        return rows_window(spec, rows)[None]
    return instance_windows(spec, rows)


def instance_windows(spec: SeriesSpec, windows: Any) -> np.ndarray:
    lookback, inputs = spec.raw_shape
    hint = f"each window is {lookback} steps × {inputs} values ({', '.join(spec.inputs)})"
    if not isinstance(windows, list | np.ndarray) or not len(windows):
        raise DataError(f'send {{"rows": [...]}} or {{"instances": [window, …]}}; {hint}')
    try:
        array = np.asarray(windows, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        raise DataError(f"windows must be nested lists of numbers; {hint}") from None
    if array.size != len(windows) * lookback * inputs:
        raise DataError(f"got {array.size} number(s) for {len(windows)} window(s); {hint}")
    if not np.isfinite(array).all() or np.abs(array).max() > 3.0e38:
        raise DataError("windows contain NaN or Inf values (or numbers too large for float32)")
    return array.reshape(len(windows), lookback, inputs).astype(np.float32)


def rows_window(spec: SeriesSpec, rows: Any) -> np.ndarray:
    """The newest `lookback` named rows → one window (lookback, inputs)."""
    lookback = spec.lookback
    if not isinstance(rows, list) or len(rows) < lookback:
        got = len(rows) if isinstance(rows, list) else "no list of"
        raise DataError(
            f"rows: the model reads the last {lookback} observations; got {got} row(s) "
            f"(each an object with {', '.join(spec.inputs)})"
        )
    newest = rows[-lookback:]
    offset = len(rows) - lookback
    window = np.empty((lookback, len(spec.inputs)), np.float32)
    for i, row in enumerate(newest):
        if not isinstance(row, dict):
            raise DataError(f"rows[{i + offset}] must be an object of column: value")
        for j, name in enumerate(spec.inputs):
            window[i, j] = _number(row.get(name), name, i + offset)
    if spec.timestamp is not None and all(spec.timestamp in r for r in newest):
        _check_times(spec, [r[spec.timestamp] for r in newest], offset)
    return window


def _number(value: Any, column: str, row: int) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DataError(f"rows[{row}].{column}: {value!r} is not a number (missing or empty?)")
    number = float(value)
    if not np.isfinite(number) or abs(number) > 3.0e38:
        raise DataError(f"rows[{row}].{column}: {value!r} is not a finite number")
    return number


def _check_times(spec: SeriesSpec, stamps: list[Any], offset: int) -> None:
    from scaledl.data.series.timeparse import parse_time

    seconds = []
    for i, stamp in enumerate(stamps):
        try:
            seconds.append(parse_time(str(stamp)))
        except DataError:
            raise DataError(
                f"rows[{i + offset}].{spec.timestamp}: {stamp!r} is not an ISO date-time"
            ) from None
    steps = np.diff(np.asarray(seconds, np.int64))
    step = spec.step_seconds
    for i in np.flatnonzero(steps <= 0)[:1]:
        raise DataError(
            f"rows[{i + 1 + offset}]: timestamp {stamps[i + 1]!r} is not after "
            f"{stamps[i]!r}; send rows oldest first, without duplicates"
        )
    for i, delta in enumerate(steps):
        if step is not None and delta != step:
            raise DataError(
                f"rows[{i + offset}]→rows[{i + 1 + offset}]: {stamps[i]!r} to "
                f"{stamps[i + 1]!r} is {int(delta)} s; the model steps by {int(step)} s "
                "(fill the gap first)"
            )


def forecasts(spec: SeriesSpec, outputs: np.ndarray) -> list[dict[str, Any]]:
    out = np.asarray(outputs, np.float64).reshape(len(outputs), spec.horizon, len(spec.targets))
    return [
        {
            "forecast": {name: out[i, :, j].tolist() for j, name in enumerate(spec.targets)},
            "horizon": spec.horizon,
        }
        for i in range(len(out))
    ]
