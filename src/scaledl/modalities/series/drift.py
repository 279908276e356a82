"""What the monitor watches in a look-back window: per variable, numbers a person can read.

For every input variable of a window (values standardised with the training statistics):

| feature | what it is | what moves it |
|---|---|---|
| `level` | the window's mean | a level shift, a slow drift |
| `spread` | log of the window's standard deviation | a scale change |
| `step` | mean of the last quarter minus the rest, in window std units | a recent level shift |
| `roughness` | log of the mean absolute step-to-step change | noise, scale, a stuck sensor |
| `stillness` | share of unchanged steps in the last quarter | a sensor stuck at a constant |
| `floor` | the window's 10th percentile: its base level | an offset no season explains |

`level` alone cannot tell a faulty offset from a season: a load's mean rises in summer by as
much as a sensor offset of a few training standard deviations (ETTh1's LUFL: +2.4 σ from
September to July 2017), but it rises through its peaks, while the base level it falls back to
moves much less (+0.9 σ). An offset lifts every value, the base level with it: `floor` sees it.
Profiles built before `floor` existed keep working on the features they hold: the monitor
picks a profile's own features by name (`monitor.series_profile.align_profile`).

They are computed in chunks, so a profile of 10,000 windows of 512 steps stays small.
"""

from __future__ import annotations

import numpy as np

from scaledl.contract import SeriesSpec

FEATURES = ("level", "spread", "step", "roughness", "stillness", "floor")
FLOOR_QUANTILE = 0.1
EPS = 1e-6
CHUNK = 1024


def feature_names(spec: SeriesSpec) -> list[str]:
    return [f"{var}.{feature}" for feature in FEATURES for var in spec.inputs]


def window_features(spec: SeriesSpec, windows: np.ndarray) -> np.ndarray:
    """(N, lookback, inputs) raw windows → (N, 6 · inputs) features (order: feature_names)."""
    x = np.asarray(windows)
    if x.ndim != 3 or len(x) == 0:
        return np.zeros((0, len(FEATURES) * len(spec.inputs)), np.float32)
    mean = np.asarray(spec.mean, np.float64)
    std = np.asarray(spec.std, np.float64)
    parts = [
        _chunk(np.asarray(x[i : i + CHUNK], np.float64), mean, std) for i in range(0, len(x), CHUNK)
    ]
    return np.concatenate(parts).astype(np.float32)


def _chunk(raw: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    z = (raw - mean) / std  # (n, L, F)
    steps = z.shape[1]
    tail = max(1, steps // 4)
    level = z.mean(axis=1)
    sd = z.std(axis=1)
    spread = np.log(sd + EPS)
    head = z[:, :-tail].mean(axis=1) if steps > tail else level
    step = (z[:, -tail:].mean(axis=1) - head) / (sd + 1e-3)
    diffs = np.abs(np.diff(z, axis=1)) if steps > 1 else np.zeros_like(z[:, :1])
    roughness = np.log(diffs.mean(axis=1) + EPS)
    stillness = (diffs[:, -tail:] <= EPS).mean(axis=1)
    floor = np.quantile(z, FLOOR_QUANTILE, axis=1)
    return np.concatenate([level, spread, step, roughness, stillness, floor], axis=1)
