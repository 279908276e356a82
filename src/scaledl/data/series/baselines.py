"""The naive forecasts every model is reported beside, computed from the same raw windows.

- **persistence**: every future step repeats the last observed value;
- **seasonal naive**: step h repeats the value one season earlier (the last observed season,
  cycled when the horizon is longer than a season).

Both read the targets from the look-back window, so they need each target among the inputs.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from scaledl.errors import DataError

CHUNK = 2048  # windows per step: bounded memory on views of any length


def _target_columns(target_index: list[int]) -> list[int]:
    if any(i < 0 for i in target_index):
        raise DataError("the naive baselines need every target among the inputs")
    return list(target_index)


def persistence(x: np.ndarray, target_index: list[int], horizon: int) -> np.ndarray:
    cols = _target_columns(target_index)
    last = np.asarray(x[:, -1, :], dtype=np.float32)[:, cols]
    return np.repeat(last[:, None, :], horizon, axis=1)


def seasonal_naive(x: np.ndarray, target_index: list[int], horizon: int, season: int) -> np.ndarray:
    cols = _target_columns(target_index)
    lookback = x.shape[1]
    if season > lookback:
        raise DataError(f"seasonal naive needs a look-back ≥ the season ({season} steps)")
    steps = lookback - season + (np.arange(horizon) % season)
    return np.asarray(x[:, steps, :], dtype=np.float32)[:, :, cols]


def chunks(n: int) -> Iterator[slice]:
    for i in range(0, n, CHUNK):
        yield slice(i, min(n, i + CHUNK))


def baseline_forecasts(
    x: np.ndarray, target_index: list[int], horizon: int, season: int | None
) -> dict[str, np.ndarray]:
    """Every applicable baseline's forecast for the windows `x` (N, lookback, inputs)."""
    if any(i < 0 for i in target_index):
        return {}
    out: dict[str, list[np.ndarray]] = {"persistence": []}
    seasonal = season is not None and season <= x.shape[1]
    if seasonal:
        out["seasonal_naive"] = []
    for sl in chunks(len(x)):
        out["persistence"].append(persistence(x[sl], target_index, horizon))
        if seasonal:
            assert season is not None
            out["seasonal_naive"].append(seasonal_naive(x[sl], target_index, horizon, season))
    return {k: np.concatenate(v) if v else np.zeros((0,)) for k, v in out.items()}


def default_season(step_seconds: float | None) -> int | None:
    """A day of hourly-or-finer data, a week of daily data, a year of weekly/monthly data."""
    if step_seconds is None or step_seconds <= 0:
        return None
    day, week = 86400.0, 7 * 86400.0
    if step_seconds <= 3600 and day % step_seconds == 0:
        return int(day // step_seconds)
    if step_seconds == day:
        return 7
    if step_seconds == week:
        return 52
    return None
