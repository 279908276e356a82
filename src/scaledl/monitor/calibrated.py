"""A drift test calibrated on the reference period's own chunks, for serially dependent data.

Windows of a time series that arrive one after another overlap and drift slowly with the
seasons: two consecutive windows are nearly the same sample, so tests that assume independent
samples (KS, MMD with their textbook p-values) raise alarms on perfectly normal traffic. This
test takes its null distribution from the data instead (the approach of chunk-based monitors
such as NannyML's): the statistic is computed for many chunks of `n` consecutive windows of the
reference period, and a live window's p-value is its rank among them.

Statistic: per feature, the window's mean, standardised by the spread of that mean over the
reference chunks (a control chart per feature). Features can come in **groups** (a forecaster's:
one per sensor, its own features and its gaps to the others); a group's score is the sum of its
features' absolute standardised values, and the window's score is the largest group score (a
max-T combination over groups, Westfall–Young), compared with the reference chunks' largest — so
correlated features and features of different natural variability are weighed fairly. Without
groups every feature is its own group: the score is the largest |standardised value|. Why sum
within a group: a fault of one sensor moves several of its features at once (an offset moves
its level, its floor and their gaps; a scale change its spread, its roughness and the roughness
gap), each by a little. In a sum each feature's |z| counts in units of its own null tail (its
95th percentile over the reference chunks, `tail_weights`): features differ in how far normal
seasons push them (a load's level by several spreads now and then, oil temperature's roughness
hardly at all), and unweighted, the widest tails set the bar for everything (on ETTh1 a doubled
scale of oil temperature was caught in 27 % of windows, 100 % weighted). The price: a season that
moves many features of one sensor a little counts too, so the reference's seasons set a higher
bar; and a single feature that alone stands out (a stuck sensor's stillness at onset) must
stand out further. Which rule a check uses is
`DriftConfig.windows_score` (default: the largest single feature); on ETTh1 both are measured
side by side (`bench/forecast_drift.py`, docs/forecasting.md). The p-value
`(1 + #reference chunks at least as extreme) / (1 + B)` is valid for exchangeable chunks: on a
period that behaves like the reference, alarms come at rate `alpha`.

The spread is measured on each side of the median separately (a two-piece control chart): a
few months of reference hold one or two seasonal excursions, one-sided (ETTh1's LULL dips by
1.5 training σ for a month of its four), and a single standard deviation inflated by a dip
would hide a rise of the same size. Each side's spread is √2 × the root mean square of the
deviations on that side, which is the standard deviation when the chunk means are symmetric.

**In sample or out of sample.** Scored against statistics that include it, a reference chunk
looks more ordinary than an unseen period of the same series: on a seasonal series a few
months long, weeks held out of the reference alarm on every window although the in-sample
rate is `alpha` (ETTh1: 100 %). With `out_of_sample`, each reference chunk's null score is
measured against the reference without the chunks that share a window with it, the way live
traffic (never in the reference) is scored, so the false-alarm rate holds on unseen weeks; the
price is a higher threshold, i.e. less power against small shifts.

**Tolerance.** A feature may carry a tolerance: a deviation from the centre within it scores zero,
beyond it only the excess counts (a dead band, for features whose normal value drifts slowly
but whose faults move them far: the gaps between sensors of `modalities.series.drift`). The
null is computed with the same rule, so the p-value keeps its meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

NULL_CHUNKS = 400  # chunk positions behind the null distribution
MIN_CHUNKS = 8  # a window needs a reference at least this many times its size
MIN_SPREAD = 1e-3
TAIL_QUANTILE = 0.95  # grouped scores: each |z| in units of its own null 95th percentile


@dataclass
class Calibration:
    """The null distribution of windows of one size."""

    size: int
    center: np.ndarray  # (k,) median chunk mean per feature
    upper: np.ndarray  # (k,) spread of the chunk means above the median, per feature
    lower: np.ndarray  # (k,) … and below it
    maxima: np.ndarray  # (B,) each reference chunk's score (its largest group score)
    tolerance: np.ndarray  # (k,) the dead band around the centre, per feature (0: none)
    groups: np.ndarray | None = None  # (k,) group index per feature; None: each its own
    weights: np.ndarray | None = None  # (k,) per-feature weight of |z| (None: all 1)

    def scores(self, window: np.ndarray) -> np.ndarray:
        return self.standardise(window.mean(axis=0))

    def group_scores(self, z: np.ndarray) -> np.ndarray:
        """(…, k) standardised means → (…, groups) sums of |z| per group."""
        magnitudes = np.abs(z) if self.weights is None else np.abs(z) * self.weights
        return group_sums(magnitudes, self.groups)

    def standardise(self, means: np.ndarray) -> np.ndarray:
        deviation = _beyond(means - self.center, self.tolerance)
        return np.where(deviation >= 0, deviation / self.upper, deviation / self.lower)

    def p_value(self, window: np.ndarray) -> tuple[float, np.ndarray]:
        """(p-value, per-feature standardised scores) of a window (n, k)."""
        z = self.scores(window)
        top = float(self.group_scores(z).max()) if z.size else 0.0
        p = (1 + int((self.maxima >= top).sum())) / (1 + len(self.maxima))
        return float(p), z


def group_sums(magnitudes: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
    """Sums of `magnitudes` (…, k) over each group of features (…, groups); without groups the
    magnitudes themselves."""
    if groups is None:
        return magnitudes
    members = np.zeros((len(groups), int(groups.max()) + 1))
    members[np.arange(len(groups)), groups] = 1.0
    return np.asarray(magnitudes @ members)


def groups_by_prefix(names: list[str], width: int) -> np.ndarray | None:
    """Group index per feature from names "<group>.<feature>" (a forecaster's "<sensor>.level",
    "<sensor>.level_gap"); None when the names do not cover the `width` features or name no
    group shared by two features (then every feature stands alone). The names come from a
    package's profile: anything but strings also means no groups."""
    if len(names) != width or not all(isinstance(n, str) and "." in n for n in names):
        return None
    prefixes = [name.rsplit(".", 1)[0] for name in names]
    order = list(dict.fromkeys(prefixes))
    if len(order) == len(prefixes):
        return None
    return np.asarray([order.index(prefix) for prefix in prefixes], np.int64)


def calibrate(
    sequence: np.ndarray,
    size: int,
    chunks: int = NULL_CHUNKS,
    out_of_sample: bool = False,
    tolerance: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    tail_quantile: float | None = TAIL_QUANTILE,
) -> Calibration:
    """Null distribution for windows of `size` consecutive rows of `sequence` (time order);
    `groups`: a group index per feature (scores sum within a group, each feature's |z| in units
    of its own null tail at `tail_quantile`, see `tail_weights`; None: unweighted), None for
    none."""
    n = len(sequence)
    if size > n:
        raise ValueError(f"a window of {size} is longer than the {n} reference windows")
    starts = np.unique(np.linspace(0, n - size, min(chunks, n - size + 1)).astype(np.int64))
    cumulative = np.concatenate([np.zeros((1, sequence.shape[1])), np.cumsum(sequence, axis=0)])
    means = (cumulative[starts + size] - cumulative[starts]) / size  # (B, k)
    center = np.median(means, axis=0)
    upper, lower = _side_spreads(means - center)
    band = np.zeros(sequence.shape[1]) if tolerance is None else np.asarray(tolerance, np.float64)
    calibration = Calibration(size, center, upper, lower, np.zeros(0), band, groups)
    if out_of_sample:
        null = _held_out_scores(means, starts, size, band)
    else:
        null = calibration.standardise(means)
    if groups is not None and tail_quantile is not None:
        calibration.weights = tail_weights(null, tail_quantile)
    calibration.maxima = calibration.group_scores(null).max(axis=1)
    return calibration


def tail_weights(null: np.ndarray, quantile: float = TAIL_QUANTILE) -> np.ndarray:
    """Per feature, 1 / its own null tail: the `quantile` of |z| over the reference chunks (at
    least 1, so a feature that rarely moves is not magnified). Summed within a sensor, features
    then count by how unusual they are for themselves: a season moves a load's level by several
    of its standard deviations now and then, while oil temperature's roughness barely moves,
    and without weights the level's wide tail set the bar the roughness had to clear."""
    tail = np.quantile(np.abs(null), quantile, axis=0)
    return np.asarray(1.0 / np.maximum(tail, 1.0))


def _held_out_scores(
    means: np.ndarray, starts: np.ndarray, size: int, tolerance: np.ndarray
) -> np.ndarray:
    """Each chunk's standardised means (B, k) against the chunks it shares no row with.

    A window is at most 1/MIN_CHUNKS of the reference, so at least 5/7 of the chunk positions
    are left to measure a centre and spreads on (a reference of a single chunk has none: it is
    scored in sample)."""
    # chunks sharing a row with chunk j are those starting within `size` of it: a run of
    # positions [first[j], last[j]) in the sorted starts
    first = np.searchsorted(starts, starts - size, side="right")
    last = np.searchsorted(starts, starts + size, side="left")
    by_feature = np.ascontiguousarray(means.T)  # (k, B): a row per feature is fast to partition
    scores = np.empty_like(means)
    for j in range(len(starts)):
        others = np.concatenate([by_feature[:, : first[j]], by_feature[:, last[j] :]], axis=1)
        if others.shape[1] == 0:
            others = by_feature
        center = _row_medians(others)
        upper, lower = _side_spreads(others - center[:, None], axis=1)
        deviation = _beyond(means[j] - center, tolerance)
        scores[j] = deviation / np.where(deviation >= 0, upper, lower)
    return scores


def _beyond(deviation: np.ndarray, tolerance: np.ndarray) -> np.ndarray:
    """The part of each deviation past its feature's tolerance (zero within it)."""
    return np.sign(deviation) * np.maximum(np.abs(deviation) - tolerance, 0.0)


def _row_medians(x: np.ndarray) -> np.ndarray:
    """np.median(x, axis=1) with one partition (it is called once per chunk position)."""
    half = x.shape[1] // 2
    part = np.partition(x, half, axis=1)
    if x.shape[1] % 2:
        return part[:, half]
    return (part[:, :half].max(axis=1) + part[:, half]) / 2


def _side_spreads(deviations: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per feature, the spread above and below zero: √(2 · mean(deviation² on that side));
    `axis` runs over the chunks (1: a row per feature, the fast layout for many calls)."""
    above = np.sqrt(2 * np.mean(np.maximum(deviations, 0) ** 2, axis=axis))
    below = np.sqrt(2 * np.mean(np.minimum(deviations, 0) ** 2, axis=axis))
    return np.maximum(above, MIN_SPREAD), np.maximum(below, MIN_SPREAD)


def chunk_size_limit(reference_length: int) -> int:
    return max(1, reference_length // MIN_CHUNKS)


def windows_test(
    sequence: np.ndarray,
    window: np.ndarray,
    names: list[str],
    cache: dict[str, Any],
    out_of_sample: bool = False,
    tolerance: np.ndarray | None = None,
    groups: np.ndarray | None = None,
) -> tuple[float, float, dict[str, Any]]:
    """(p-value, score, details) of `window` against the reference `sequence`; `groups` as in
    `calibrate` (the details then name the group with the largest score).

    A window longer than the reference allows (1/MIN_CHUNKS of it) is compared with the null of
    the largest allowed chunks: the mean of a longer window varies less than theirs, so the
    p-value is conservative (never more alarms than alpha), and a real shift still stands out.
    """
    size = min(len(window), chunk_size_limit(len(sequence)))
    grouped = "grouped" if groups is not None else "single"
    key = f"calibration:{size}:{'out' if out_of_sample else 'in'}:{grouped}"
    if key not in cache:
        cache[key] = calibrate(
            sequence.astype(np.float64),
            size,
            out_of_sample=out_of_sample,
            tolerance=tolerance,
            groups=groups,
        )
    calibration = cache[key]
    p, z = calibration.p_value(window.astype(np.float64))
    scores = calibration.group_scores(z) if z.size else np.zeros(0)
    order = np.argsort(-np.abs(z))[:5]
    detail: dict[str, Any] = {
        "null_chunk_size": size,
        "null_chunks": len(cache[key].maxima),
        "calibration": "out_of_sample" if out_of_sample else "in_sample",
        "score_rule": "largest sum of |z| over a group" if groups is not None else "largest |z|",
        "reference_windows": len(sequence),
        "top_features": [
            {"feature": names[i] if i < len(names) else str(i), "z": round(float(z[i]), 3)}
            for i in order
        ],
    }
    if groups is not None and z.size:
        top_group = int(np.argmax(scores))
        members = [names[i] for i in np.flatnonzero(groups == top_group) if i < len(names)]
        detail["top_group"] = {
            "group": members[0].rsplit(".", 1)[0] if members else str(top_group),
            "score": round(float(scores[top_group]), 3),
        }
    return p, float(scores.max()) if z.size else 0.0, detail
