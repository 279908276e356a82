"""The two-sample tests on synthetic data with known answers, and their false-alarm rates."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from scaledl.monitor.outputs import summarize_outputs
from scaledl.monitor.profile import median_distance
from scaledl.monitor.stats import break_ties, chi2_homogeneity, ks_columns, mmd_permutation


def _bonferroni_ks(ref: np.ndarray, win: np.ndarray, rng: np.random.Generator) -> float:
    p = ks_columns(ref, win, rng).p_values
    return float(min(1.0, len(p) * p.min()))


def test_ks_statistic_and_p_value_are_the_documented_ones() -> None:
    """D is the largest gap between the two empirical CDFs; the p-value is the one-sample
    Kolmogorov distribution at the effective size n·m/(n+m) (scipy's asymptotic method)."""
    rng = np.random.default_rng(0)
    ref, win = rng.normal(size=(700, 4)), rng.normal(0.2, 1.0, size=(90, 4))
    ours = ks_columns(ref, win, rng)
    for j in range(4):
        points = np.concatenate([ref[:, j], win[:, j]])
        gap = np.abs(
            (ref[:, j][None, :] <= points[:, None]).mean(1)
            - (win[:, j][None, :] <= points[:, None]).mean(1)
        )
        assert ours.statistic[j] == pytest.approx(gap.max(), abs=1e-12)
    effective = round(700 * 90 / (700 + 90))
    np.testing.assert_allclose(ours.p_values, sps.kstwo.sf(ours.statistic, effective), rtol=1e-9)


def test_ks_breaks_ties_before_testing() -> None:
    """Discrete columns are jittered below their smallest gap, so D is computed on distinct
    values: the same rows with the same generator give the same (exact, not conservative)
    answer, and a column of one repeated value is no drift."""
    ref = np.repeat(np.arange(5.0), 40)[:, None]
    win = np.repeat(np.arange(5.0), 8)[:, None]
    a = ks_columns(ref, win, np.random.default_rng(9))
    b = ks_columns(ref, win, np.random.default_rng(9))
    assert a.statistic == b.statistic and a.p_values == b.p_values
    assert a.p_values[0] > 0.05
    constant = ks_columns(np.ones((50, 1)), np.ones((20, 1)), np.random.default_rng(0))
    assert constant.p_values[0] > 0.05


@pytest.mark.parametrize(("n", "m"), [(400, 40), (400, 800)])
def test_ks_bonferroni_false_alarms_stay_at_alpha(n: int, m: int) -> None:
    """Null windows, small and larger than the reference: about 5% alarms, never many more."""
    rng = np.random.default_rng(1)
    alarms = [
        _bonferroni_ks(rng.normal(size=(n, 8)), rng.normal(size=(m, 8)), rng) < 0.05
        for _ in range(300)
    ]
    assert 0.01 <= np.mean(alarms) <= 0.09


def test_ks_on_discrete_data_is_calibrated_and_detects_a_small_shift() -> None:
    """Integer-valued data (many ties) keeps its false-alarm rate and its power."""
    rng = np.random.default_rng(2)
    null = [
        _bonferroni_ks(rng.poisson(3, (500, 4)).astype(float), rng.poisson(3, (200, 4)), rng) < 0.05
        for _ in range(300)
    ]
    assert 0.01 <= np.mean(null) <= 0.09
    shifted = [
        _bonferroni_ks(rng.poisson(3, (500, 4)).astype(float), rng.poisson(3.6, (200, 4)), rng)
        < 0.05
        for _ in range(40)
    ]
    assert np.mean(shifted) >= 0.8


def test_break_ties_keeps_order_between_distinct_values() -> None:
    rng = np.random.default_rng(3)
    ref = np.array([[0.0], [1.0], [1.0], [2.0]])
    win = np.array([[1.0], [2.0]])
    r, w = break_ties(ref, win, rng)
    assert len(np.unique(np.concatenate([r, w]))) == 6
    assert r[0, 0] < r[1, 0] < r[3, 0] and r[2, 0] < r[3, 0]
    assert np.all(np.abs(np.concatenate([r - ref, w - win])) < 0.5)


def test_mmd_detects_a_joint_shift_and_is_calibrated() -> None:
    rng = np.random.default_rng(4)
    ref = rng.normal(size=(300, 6))
    bandwidth = median_distance(ref)
    shifted = rng.normal(size=(150, 6)) * 1.5 + 0.3
    result = mmd_permutation(ref, shifted, bandwidth, 200, rng)
    assert result.p_value < 0.01 and result.mmd2 > 0
    null_p = [
        mmd_permutation(ref, rng.normal(size=(100, 6)), bandwidth, 99, rng).p_value
        for _ in range(60)
    ]
    assert np.mean(np.array(null_p) < 0.05) <= 0.15
    assert 0.3 <= np.mean(null_p) <= 0.7  # p-values spread over (0, 1], as uniform ones do


def test_chi_square_detects_label_shift_and_handles_sparse_cells() -> None:
    rng = np.random.default_rng(5)
    mix = np.array([0.3, 0.2, 0.2, 0.1, 0.1, 0.05, 0.03, 0.01, 0.005, 0.005])
    ref = rng.multinomial(2000, mix)
    shifted = rng.multinomial(200, np.roll(mix, 1))
    assert chi2_homogeneity(ref, shifted, rng).p_value < 0.001
    sparse = [chi2_homogeneity(ref, rng.multinomial(30, mix), rng) for _ in range(200)]
    assert {r.method for r in sparse} == {"monte-carlo"}
    assert np.mean([r.p_value < 0.05 for r in sparse]) <= 0.09
    dense = chi2_homogeneity(ref, rng.multinomial(3000, mix), rng)
    assert dense.method == "asymptotic" and dense.p_value > 0.001
    assert dense.p_value == pytest.approx(sps.chi2.sf(dense.statistic, dense.dof), rel=1e-9)
    lattice = sparse[0].p_value * (1 + 1000)  # Monte-Carlo: (1 + #≥) / (1 + simulations)
    assert lattice == pytest.approx(round(lattice), abs=1e-6)
    assert chi2_homogeneity(np.array([5, 0]), np.array([3, 0]), rng).method == "degenerate"


def test_output_summary_is_the_same_for_logits_and_probabilities_and_has_no_ties() -> None:
    logits = np.array([[40.0, 0.0, 1.0], [39.0, 0.0, 0.0], [0.0, 2.0, 1.0]])
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    a, b = summarize_outputs(logits), summarize_outputs(probs.astype(np.float64))
    np.testing.assert_array_equal(a.predicted, [0, 0, 1])
    np.testing.assert_array_equal(a.predicted, b.predicted)
    np.testing.assert_allclose(a.confidence, b.confidence, rtol=1e-6)
    # Both saturated rows have confidence 1.0 in float32 but distinct scores.
    assert np.float32(a.confidence[0]) == np.float32(a.confidence[1]) == 1.0
    assert a.score[0] != a.score[1]
