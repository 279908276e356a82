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

**Gaps between sensors.** A year of seasons moves a load's level by as much as a faulty offset,
but it moves the sensors of one site together. For each variable and each of `level`, `floor`,
`spread` and `roughness`, the profile fits (ridge regression, on its reference windows) what the
other variables' same feature predicts; `<var>.<feature>_gap` is the window's value minus that
prediction. Being linear in the features, the gaps are rows of the profile's projection (old
profiles have none and keep working). Relations between sensors drift too, slowly (ETTh1's oil
temperature against its loads: by up to 2 training σ in 16 months), so a gap only counts past a
tolerance (`GAP_TOLERANCE`: 1 training σ for levels, 0.3 — a factor 1.35 — for the logs of
spread and roughness): within it the gap scores zero, beyond it the excess is scored like any
feature. The fit is a ridge regression (`GAP_RIDGE`) because a site's loads are nearly collinear:
plain least squares predicted ETTh1's LUFL from 7.5 × HUFL − 7.0 × MUFL, a difference that did not
hold in other months (in a trial run, not kept in bench/results, it raised the false alarms on
held-out weeks). On ETTh1 the gaps catch a +3 σ offset on one sensor of seven in 84 % of windows,
against 52 % for the sensor's own features (`bench/results/forecast.json`, drift section).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scaledl.contract import SeriesSpec

FEATURES = ("level", "spread", "step", "roughness", "stillness", "floor")
FLOOR_QUANTILE = 0.1
EPS = 1e-6
CHUNK = 1024
GAP_TOLERANCE = {"level": 1.0, "floor": 1.0, "spread": 0.3, "roughness": 0.3}
GAP_RIDGE = 0.01  # the penalty per window on coefficients of standardised predictors
GAP_FOLD_BLOCKS = 8  # stretches of the reference for the unseen stray of a gap (every other one)
GAP_STRAY_QUANTILE = 0.99


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


@dataclass
class Gaps:
    """Linear maps from window features to gaps between sensors, with their tolerances."""

    rows: np.ndarray  # (g, k): gap = rows @ features (the intercept cancels in the drift test)
    names: list[str]  # (g,) "<var>.<feature>_gap"
    tolerance: np.ndarray  # (g,) how far a gap may move before it counts


def fit_gaps(spec: SeriesSpec, features: np.ndarray) -> Gaps:
    """Per variable and gap feature, the ridge prediction from the other variables' same
    feature on the reference windows `features` (N, k in `feature_names` order, time order).

    The tolerance of a gap is the larger of `GAP_TOLERANCE` and how far the gap strays on
    stretches of the reference its fit did not see (`_unseen_stray`)."""
    variables = len(spec.inputs)
    width = len(FEATURES) * variables
    x = np.asarray(features, np.float64)
    if variables < 2 or x.ndim != 2 or x.shape[1] != width or len(x) < 4 * GAP_FOLD_BLOCKS:
        return Gaps(np.zeros((0, width), np.float32), [], np.zeros(0))
    rows, names, tolerance = [], [], []
    for feature, allowed in GAP_TOLERANCE.items():
        base = FEATURES.index(feature) * variables
        block = x[:, base : base + variables]
        for j, var in enumerate(spec.inputs):
            others = [k for k in range(variables) if k != j]
            row = np.zeros(width)
            row[base + j] = 1.0
            row[[base + k for k in others]] = -_ridge(block[:, others], block[:, j])
            rows.append(row)
            names.append(f"{var}.{feature}_gap")
            tolerance.append(max(allowed, _unseen_stray(block[:, others], block[:, j])))
    return Gaps(np.asarray(rows, np.float32), names, np.asarray(tolerance))


def _ridge(predictors: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Ridge coefficients (no intercept: it cancels in the drift test), the penalty relative to
    each predictor's own variance."""
    centered = predictors - predictors.mean(axis=0)
    scale = np.maximum(centered.std(axis=0), EPS)
    design = centered / scale
    penalty = GAP_RIDGE * len(design) * np.eye(design.shape[1])
    coef = np.linalg.solve(design.T @ design + penalty, design.T @ (target - target.mean()))
    return np.asarray(coef / scale)


def _unseen_stray(predictors: np.ndarray, target: np.ndarray) -> float:
    """How far the gap strays (its 99th percentile distance from its median) on stretches of
    time its fit did not see: the reference is cut into GAP_FOLD_BLOCKS blocks, the gap of each
    half (every other block) is predicted from a fit on the other half. A relation between
    sensors that holds only month by month gets a tolerance as wide as its wandering."""
    blocks = np.array_split(np.arange(len(target)), GAP_FOLD_BLOCKS)
    halves = [np.concatenate(blocks[first::2]) for first in (0, 1)]
    unseen = np.empty(len(target))
    for fit, held in (halves, halves[::-1]):
        coef = _ridge(predictors[fit], target[fit])
        offset = np.mean(target[fit] - predictors[fit] @ coef)
        unseen[held] = target[held] - predictors[held] @ coef - offset
    return float(np.quantile(np.abs(unseen - np.median(unseen)), GAP_STRAY_QUANTILE))
