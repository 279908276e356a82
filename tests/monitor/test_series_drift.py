"""Forecaster drift on window features: a sensor offset the size of a seasonal swing is caught,
clean windows of the same process are not flagged, and profiles from before a feature was added
keep working."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from scaledl.config.monitor import DriftConfig
from scaledl.contract.preprocessing import SeriesSpec
from scaledl.errors import PackageError
from scaledl.modalities.series.drift import feature_names, window_features
from scaledl.monitor.calibrated import calibrate
from scaledl.monitor.drift import Window, detect_drift
from scaledl.monitor.profile import ReferenceProfile, load_profile
from scaledl.monitor.series_profile import align_profile, series_profile

LOOKBACK, HORIZON, N = 48, 6, 100
SUMMER = slice(600, 1300)  # hours of the reference whose load peaks are five times higher
REFERENCE_ROWS = 2500
CONFIG = DriftConfig(tests=["windows"], min_samples=20)


def hourly(rows: int, seed: int) -> np.ndarray:
    """A load that returns to a base of 2.0 every night and peaks by day (much higher in the
    summer stretch, which lifts its mean by 0.6), and a temperature."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows, dtype=np.float64)
    daylight = np.maximum(0.0, np.sin(2 * np.pi * t / 24)) ** 2
    amplitude = np.full(rows, 0.6)
    amplitude[SUMMER] = 3.0
    load = 2.0 + amplitude * daylight + rng.normal(0, 0.1, rows)
    temp = 10 + 2 * np.cos(2 * np.pi * t / 24) + rng.normal(0, 0.2, rows)
    return np.stack([load, temp], axis=1)


def windows(rows: np.ndarray) -> np.ndarray:
    return sliding_window_view(rows, LOOKBACK, axis=0).transpose(0, 2, 1)


@pytest.fixture(scope="module")
def series() -> np.ndarray:
    return hourly(REFERENCE_ROWS + 400, seed=0)


@pytest.fixture(scope="module")
def spec(series: np.ndarray) -> SeriesSpec:
    mean, std = series[:REFERENCE_ROWS].mean(axis=0), series[:REFERENCE_ROWS].std(axis=0)
    return SeriesSpec(
        raw_shape=[LOOKBACK, 2],
        horizon=HORIZON,
        inputs=["load", "temp"],
        targets=["load"],
        target_index=[0],
        mean=[float(v) for v in mean],
        std=[float(v) for v in std],
        target_mean=[float(mean[0])],
        target_std=[float(std[0])],
    )


def persistence(x: np.ndarray) -> np.ndarray:
    """The last observed load, held over the horizon: a real (if naive) forecaster."""
    return np.repeat(x[:, -1:, :1], HORIZON, axis=1).astype(np.float32)


@pytest.fixture(scope="module")
def profile(series: np.ndarray, spec: SeriesSpec) -> ReferenceProfile:
    reference = series[:REFERENCE_ROWS]
    x = windows(reference)[: -HORIZON - 1]
    starts = np.arange(len(x)) + LOOKBACK
    y = np.stack([reference[s : s + HORIZON, :1] for s in starts])
    return series_profile(x, y, spec, persistence)


def check(profile: ReferenceProfile, spec: SeriesSpec, rows: np.ndarray) -> dict[str, object]:
    x = windows(rows)[:N]
    window = Window.from_batch(profile, window_features(spec, x), persistence(x))
    result = detect_drift(profile, window, CONFIG).to_json()
    return {"drift": result["drift"], "top": result["tests"][0]["top_features"]}


def with_features(
    profile: ReferenceProfile, features: np.ndarray, names: object
) -> ReferenceProfile:
    """The input profile with other feature columns and names (an older or a forged one)."""
    return ReferenceProfile(
        projection=profile.projection,
        features=features,
        task=profile.task,
        output_predicted=None,
        output_score=None,
        output_confidence=None,
        output_values=None,
        num_classes=None,
        channel_stats=profile.channel_stats,
        meta={**profile.meta, "feature_names": names},
    )


def test_an_offset_as_large_as_the_seasonal_swing_is_caught_by_the_floor(
    series: np.ndarray, spec: SeriesSpec, profile: ReferenceProfile
) -> None:
    later = series[REFERENCE_ROWS : REFERENCE_ROWS + N + LOOKBACK]  # unseen, off-summer hours
    clean = check(profile, spec, later)
    assert not clean["drift"], clean
    shifted = later.copy()
    shifted[:, 0] += 0.6  # a sensor offset: the load's mean now looks like a summer's
    caught = check(profile, spec, shifted)
    assert caught["drift"], caught
    top = caught["top"][0]  # type: ignore[index]
    # the mean alone sits inside the summer's range; the base level has never been this high
    assert top["feature"] == "load.floor" and top["z"] > 0, caught


def test_a_rise_is_measured_against_the_spread_above_the_median() -> None:
    """One feature that dipped for a fifth of the reference: a rise is judged by how much the
    feature varies above its median, not by a spread the dip inflated."""
    rng = np.random.default_rng(1)
    sequence = rng.normal(0.0, 0.1, (3000, 1))
    sequence[1000:1600] -= 2.0
    calibration = calibrate(sequence, 100)
    assert calibration.lower[0] > 5 * calibration.upper[0]
    risen = np.full((100, 1), 0.6)
    fallen = np.full((100, 1), -0.6)
    assert calibration.p_value(risen)[0] < 0.01  # above anything normal
    assert calibration.p_value(fallen)[0] > 0.05  # well within the dip's range
    normal = sequence[2000:2100]
    assert calibration.p_value(normal)[0] > 0.05


def test_a_profile_from_before_the_floor_feature_still_works(
    series: np.ndarray, spec: SeriesSpec, profile: ReferenceProfile
) -> None:
    names = feature_names(spec)
    kept = [i for i, name in enumerate(names) if not name.endswith(".floor")]
    older = with_features(profile, profile.features[:, kept], [names[i] for i in kept])
    loaded = align_profile(load_profile(older.to_bytes()), spec, "old.npz")
    assert loaded.projection.k == len(kept) and loaded.projection.dim == len(names)
    stuck = series[REFERENCE_ROWS : REFERENCE_ROWS + N + LOOKBACK].copy()
    stuck[:, 1] = stuck[0, 1]  # the temperature sensor freezes
    assert not check(loaded, spec, series[REFERENCE_ROWS : REFERENCE_ROWS + N + LOOKBACK])["drift"]
    frozen = check(loaded, spec, stuck)
    assert frozen["drift"] and frozen["top"][0]["feature"].startswith("temp."), frozen  # type: ignore[index]
    assert align_profile(profile, spec, "new.npz") is profile


@pytest.mark.parametrize("names", [["load.level", "load.nonsense"], "load.level", None])
def test_a_profile_naming_unknown_features_is_refused(
    spec: SeriesSpec, profile: ReferenceProfile, names: object
) -> None:
    bad = with_features(profile, profile.features[:, :2], names)
    with pytest.raises(PackageError, match="scaledl monitor profile"):
        align_profile(bad, spec, "bad.npz")
