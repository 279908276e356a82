"""A drift test calibrated on the reference period's own chunks, for serially dependent data.

Windows of a time series that arrive one after another overlap and drift slowly with the
seasons: two consecutive windows are nearly the same sample, so tests that assume independent
samples (KS, MMD with their textbook p-values) raise alarms on perfectly normal traffic. This
test takes its null distribution from the data instead (the approach of chunk-based monitors
such as NannyML's): the same statistic is computed for many chunks of `n` consecutive windows of
the reference period, and a live window's p-value is its rank among them.

Statistic: per feature, the two-sample KS distance between the window's values and the whole
reference, standardised by that feature's own null median and spread; the window's score is the
largest of them (a max-T combination, Westfall–Young), compared with the null chunks' largest —
so correlated features and features of different natural variability are weighed fairly. The
p-value `(1 + #null chunks at least as extreme) / (1 + B)` is valid for exchangeable chunks; on a
period that behaves like the reference, alarms come at rate `alpha`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_REFERENCE = 4000  # reference rows per feature the KS distance is taken against
NULL_CHUNKS = 400  # chunk positions behind the null distribution
STAT = None


def chunk_means(reference_sorted: np.ndarray, window: np.ndarray) -> np.ndarray:
    return window.mean(axis=0)


def ks_distances(reference_sorted: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Two-sample KS distance per column between a sorted reference (m, k) and a window (n, k)."""
    m, k = reference_sorted.shape
    n = len(window)
    out = np.empty(k)
    ref_cdf = np.arange(1, m + 1) / m
    for j in range(k):
        ref = reference_sorted[:, j]
        win = np.sort(window[:, j])
        # both empirical CDFs at every reference point and every window point
        at_ref = np.abs(np.searchsorted(win, ref, side="right") / n - ref_cdf)
        win_cdf = np.arange(1, n + 1) / n
        at_win = np.abs(win_cdf - np.searchsorted(ref, win, side="right") / m)
        out[j] = max(at_ref.max(initial=0.0), at_win.max(initial=0.0))
    return out


@dataclass
class Calibration:
    """The null distribution for windows of one size."""

    size: int
    distances: np.ndarray  # (B, k) KS distance of every null chunk per feature
    center: np.ndarray  # (k,) median null distance per feature
    spread: np.ndarray  # (k,) spread of the null distances per feature
    maxima: np.ndarray  # (B,) each null chunk's largest standardised distance

    def scores(self, distances: np.ndarray) -> np.ndarray:
        """Distances in units of their feature's null spread above its null median."""
        return (distances - self.center) / self.spread

    def p_values(self, observed: np.ndarray) -> tuple[float, np.ndarray]:
        """(combined p-value, per-feature p-values) of an observed (k,) distance vector."""
        b = len(self.distances)
        per_feature = (1 + (self.distances >= observed[None, :]).sum(axis=0)) / (1 + b)
        top = float(np.abs(self.scores(observed)).max())
        combined = (1 + (self.maxima >= top).sum()) / (1 + b)
        return float(combined), per_feature


def reference_sample(features: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The reference a window is compared with: at most MAX_REFERENCE rows, sorted per column."""
    rows = features
    if len(rows) > MAX_REFERENCE:
        rows = rows[np.sort(rng.choice(len(rows), MAX_REFERENCE, replace=False))]
    return np.sort(rows, axis=0)


def calibrate(
    reference_sorted: np.ndarray, sequence: np.ndarray, size: int, chunks: int = NULL_CHUNKS
) -> Calibration:
    """Null distribution for windows of `size` consecutive rows of `sequence` (time order)."""
    if size > len(sequence):
        raise ValueError(f"a window of {size} is longer than the {len(sequence)} reference windows")
    starts = np.unique(np.linspace(0, len(sequence) - size, min(chunks, len(sequence) - size + 1)))
    distances = np.stack([STAT(reference_sorted, sequence[int(s) : int(s) + size]) for s in starts])
    center = np.median(distances, axis=0)
    spread = np.maximum(distances.std(axis=0), 1e-3)
    maxima = np.abs((distances - center) / spread).max(axis=1)
    return Calibration(size, distances, center, spread, maxima)


STAT = chunk_means
