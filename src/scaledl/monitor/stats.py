"""Two-sample tests on plain arrays: KS per column, MMD with permutations, chi-square on counts.

All three compare a window with a *sample* of the reference (never with the reference treated
as the true distribution), so their false-alarm rate holds whatever the two sizes are:
- KS: `scipy.stats.ks_2samp(method="asymp")` per column: p-values from the exact one-sample
  Kolmogorov distribution at the effective size n·m/(n+m), uniform under no drift whatever
  the two sizes (the exact two-sample method would cost O(n·m) per column for no gain in the
  false-alarm rate). Tied values (discrete data) are broken at random below the smallest gap
  first, which keeps the test exact instead of conservative.
- MMD: a Gaussian kernel with a bandwidth fixed from the reference, p-value from random
  relabellings of the pooled sample: (1 + #{permuted ≥ observed}) / (1 + B), valid for any B.
- Chi-square: `scipy.stats.chi2_contingency` on a 2×K homogeneity table (Pearson, no Yates
  correction); the asymptotic p-value when every expected count is ≥ 5, else a Monte-Carlo
  p-value from random tables with the same margins (scipy's `MonteCarloMethod`):
  (1 + #{simulated ≥ observed}) / (1 + B).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class KSResult:
    statistic: np.ndarray  # (k,) D per column
    p_values: np.ndarray  # (k,) uncorrected


def break_ties(
    ref: np.ndarray, win: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Jitter columns that hold repeated values by less than half their smallest gap."""
    pooled = np.sort(np.concatenate([ref, win]), axis=0)
    gaps = np.diff(pooled, axis=0)
    tied = (gaps == 0).any(axis=0)
    if not tied.any():
        return ref, win
    positive = np.where(gaps > 0, gaps, np.inf).min(axis=0)
    width = np.where(np.isfinite(positive), positive, 1.0) * 0.49
    scale = np.where(tied, width, 0.0)
    ref = ref + rng.uniform(-1.0, 1.0, size=ref.shape) * scale
    win = win + rng.uniform(-1.0, 1.0, size=win.shape) * scale
    return ref, win


def ks_columns(
    ref: np.ndarray, win: np.ndarray, rng: np.random.Generator | None = None
) -> KSResult:
    """Two-sample KS test on each column of (n, k) `ref` vs (m, k) `win`."""
    from scipy.stats import ks_2samp

    ref = np.asarray(ref, np.float64).reshape(len(ref), -1)
    win = np.asarray(win, np.float64).reshape(len(win), -1)
    ref, win = break_ties(ref, win, rng or np.random.default_rng())
    result = ks_2samp(ref, win, axis=0, method="asymp")
    return KSResult(
        statistic=np.atleast_1d(np.asarray(result.statistic, np.float64)),
        p_values=np.atleast_1d(np.asarray(result.pvalue, np.float64)),
    )


@dataclass
class MMDResult:
    mmd2: float  # unbiased MMD² estimate (the score; ~0 without drift)
    p_value: float
    permutations: int


def gaussian_kernel(a: np.ndarray, b: np.ndarray, bandwidth: float) -> np.ndarray:
    """exp(-‖aᵢ − bⱼ‖² / 2σ²) in float32 (plenty for a permutation test, twice as fast)."""
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    d2 = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * (a @ b.T)
    np.maximum(d2, 0.0, out=d2)
    d2 *= np.float32(-0.5 / (bandwidth * bandwidth))
    return np.exp(d2, out=d2)


def mmd_permutation(
    ref: np.ndarray,
    win: np.ndarray,
    bandwidth: float,
    permutations: int,
    rng: np.random.Generator,
    ref_kernel: np.ndarray | None = None,
) -> MMDResult:
    """MMD two-sample test; the permuted statistics are computed at once as diag(AᵀKA).

    `ref_kernel` is the reference's own kernel block, which a fixed reference can cache.
    """
    n, m = len(ref), len(win)
    k_rr = ref_kernel if ref_kernel is not None else gaussian_kernel(ref, ref, bandwidth)
    k_rw = gaussian_kernel(ref, win, bandwidth)
    k_ww = gaussian_kernel(win, win, bandwidth)
    kernel = np.block([[k_rr, k_rw], [k_rw.T, k_ww]])
    sign = np.concatenate([np.full(n, 1.0 / n), np.full(m, -1.0 / m)]).astype(np.float32)
    shuffled = rng.permuted(np.broadcast_to(sign, (permutations, n + m)), axis=1)
    weights = np.ascontiguousarray(np.concatenate([sign[None, :], shuffled]).T)
    stats = np.einsum("ij,ij->j", weights, kernel @ weights, dtype=np.float64)
    p_value = (1.0 + float(np.sum(stats[1:] >= stats[0] * (1.0 - 1e-6)))) / (1.0 + permutations)
    unbiased = (
        (float(k_rr.sum(dtype=np.float64)) - n) / (n * (n - 1))
        + (float(k_ww.sum(dtype=np.float64)) - m) / (m * (m - 1))
        - 2.0 * float(k_rw.mean(dtype=np.float64))
    )
    return MMDResult(mmd2=float(unbiased), p_value=p_value, permutations=permutations)


@dataclass
class ChiSquareResult:
    statistic: float
    p_value: float
    dof: int
    method: str  # "asymptotic" | "monte-carlo" | "degenerate"
    tvd: float  # total variation distance between the two class mixes


def chi2_homogeneity(
    ref_counts: np.ndarray,
    win_counts: np.ndarray,
    rng: np.random.Generator,
    simulations: int = 1000,
) -> ChiSquareResult:
    """Do two count vectors (same categories) come from the same mix?"""
    from scipy import stats

    ref_counts = np.asarray(ref_counts, np.int64)
    win_counts = np.asarray(win_counts, np.int64)
    n, m = int(ref_counts.sum()), int(win_counts.sum())
    tvd = 0.5 * float(np.abs(ref_counts / max(n, 1) - win_counts / max(m, 1)).sum())
    keep = (ref_counts + win_counts) > 0
    if keep.sum() < 2 or n == 0 or m == 0:
        return ChiSquareResult(0.0, 1.0, 0, "degenerate", tvd)
    table = np.stack([ref_counts[keep], win_counts[keep]])
    dof = int(keep.sum()) - 1
    if stats.contingency.expected_freq(table).min() >= 5.0:
        result = stats.chi2_contingency(table, correction=False)
        method = "asymptotic"
    else:  # sparse cells: the chi-square distribution is no longer a safe approximation
        simulated = stats.MonteCarloMethod(n_resamples=simulations, rng=rng)
        result = stats.chi2_contingency(table, correction=False, method=simulated)
        method = "monte-carlo"
    return ChiSquareResult(float(result.statistic), float(result.pvalue), dof, method, tvd)
