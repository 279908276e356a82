"""Forecaster drift on window features: a sensor offset the size of a seasonal swing is caught,
clean windows of the same process are not flagged, and profiles from before a feature was added
keep working."""

from __future__ import annotations

import dataclasses

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
    return spec_of(series[:REFERENCE_ROWS])


def spec_of(rows: np.ndarray) -> SeriesSpec:
    """A load-and-temperature forecaster's spec, scaled on `rows` (its training period)."""
    mean, std = rows.mean(axis=0), rows.std(axis=0)
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
        # an older profile: no gaps between sensors, so no tolerance for them
        meta={
            **{k: v for k, v in profile.meta.items() if k != "tolerance"},
            "feature_names": names,
        },
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


def wandering(rows: int, seed: int) -> np.ndarray:
    """A load and a temperature whose level wanders with the weeks (a smooth random walk): each
    stretch of a few weeks sits at a level its neighbours only approach."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows, dtype=np.float64)
    weekly = rng.normal(0.0, 1.0, rows // 168 + 2).cumsum() * 0.4
    level = np.interp(t / 168, np.arange(len(weekly)), weekly)
    daylight = np.maximum(0.0, np.sin(2 * np.pi * t / 24)) ** 2
    load = 2.0 + level + 0.6 * daylight + rng.normal(0, 0.1, rows)
    temp = 10 + 2 * np.cos(2 * np.pi * t / 24) + 0.5 * level + rng.normal(0, 0.2, rows)
    return np.stack([load, temp], axis=1)


def held_out_alarms(
    features: np.ndarray,
    names: list[str],
    out_of_sample: bool,
    groups: np.ndarray | None = None,
) -> list[bool]:
    """Every other block of 400 windows is the reference; windows of N inside the blocks it left
    out (weeks it never held) are scored against it."""
    from scaledl.monitor.calibrated import windows_test

    blocks = [features[i : i + 400] for i in range(0, len(features), 400)]
    flags = []
    for kept in (0, 1):
        reference, cache = np.concatenate(blocks[kept::2]), {}
        for held in blocks[1 - kept :: 2]:
            for start in range(0, len(held) - N + 1, 20):
                p, _, _ = windows_test(
                    reference, held[start : start + N], names, cache, out_of_sample, None, groups
                )
                flags.append(p <= 0.05)
    return flags


def test_out_of_sample_calibration_keeps_false_alarms_on_unseen_weeks(spec: SeriesSpec) -> None:
    """Calibrated in sample, a reference of a wandering series calls its own unseen weeks drift
    (each reference chunk was scored against statistics that included it); calibrated out of
    sample, alarms on those weeks stay near alpha (scored per feature or summed per sensor) and
    a stuck sensor is still caught at once."""
    from scaledl.monitor.calibrated import groups_by_prefix, windows_test

    names = feature_names(spec)
    groups = groups_by_prefix(names, len(names))
    in_sample, out_of_sample, summed, stuck = [], [], [], []
    for seed in range(4):
        rows = wandering(4000, seed)
        features = window_features(spec, windows(rows)).astype(np.float64)
        in_sample += held_out_alarms(features, names, out_of_sample=False)
        out_of_sample += held_out_alarms(features, names, out_of_sample=True)
        summed += held_out_alarms(features, names, out_of_sample=True, groups=groups)
        faulty = rows[3000 : 3000 + N + LOOKBACK].copy()
        faulty[:, 0] = faulty[0, 0]  # the load sensor stuck at one value
        watched = window_features(spec, windows(faulty)).astype(np.float64)
        stuck.append(windows_test(features[:2900], watched, names, {}, True)[0] <= 0.05)
    assert np.mean(in_sample) > 0.1, np.mean(in_sample)
    assert np.mean(out_of_sample) <= 0.06, np.mean(out_of_sample)
    assert np.mean(summed) <= 0.06, np.mean(summed)
    assert np.mean(out_of_sample) < np.mean(in_sample) / 3
    assert all(stuck)


def test_a_forecaster_profile_reads_its_reference_from_history_or_the_validation_period(
    series: np.ndarray, spec: SeriesSpec
) -> None:
    """`history` (the default) takes the newest windows through the period's end and is
    calibrated out of sample; `validation` takes the period's own windows, in sample."""
    from scaledl.monitor.profile import ProfileOptions

    history_rows, period = series[:1500], series[1500:REFERENCE_ROWS]
    x = windows(period)[: -HORIZON - 1]
    y = np.stack([period[s : s + HORIZON, :1] for s in np.arange(len(x)) + LOOKBACK])
    history = windows(np.concatenate([history_rows, period]))
    kept = ProfileOptions(max_reference=1800)
    made = series_profile(x, y, spec, persistence, history_raw=history, options=kept)
    assert made.meta["calibration"] == "out_of_sample"
    assert made.meta["reference"]["series_reference"] == "history"
    assert len(made.features) == 1800  # the newest, in time order: the last one is the newest
    newest = window_features(spec, history[-1:])
    np.testing.assert_allclose(made.features[-1, : newest.shape[1]], newest[0])
    np.testing.assert_allclose(made.features[-1], made.projection.transform(newest)[0], atol=1e-5)
    own = series_profile(
        x,
        y,
        spec,
        persistence,
        history_raw=history,
        options=ProfileOptions(series_reference="validation"),
    )
    assert own.meta["calibration"] == "in_sample" and len(own.features) == len(x)
    with pytest.raises(ValueError, match="series_reference"):
        series_profile(x, y, spec, persistence, options=ProfileOptions(series_reference="all"))
    assert load_profile(made.to_bytes()).meta["calibration"] == "out_of_sample"
    # a profile written before the choice existed carries none: calibrated in sample, as then
    older = with_features(own, own.features, own.meta["feature_names"])
    del older.meta["calibration"]
    watched = made.projection.transform(window_features(spec, windows(series[REFERENCE_ROWS:])[:N]))
    detail = detect_drift(older, Window(watched), CONFIG).to_json()["tests"][0]
    assert detail["calibration"] == "in_sample"
    detail = detect_drift(made, Window(watched), CONFIG).to_json()["tests"][0]
    assert detail["calibration"] == "out_of_sample"


def test_each_null_chunk_is_scored_against_the_chunks_it_shares_no_row_with() -> None:
    """The fast out-of-sample null (one partition per chunk) equals the plain computation:
    np.median and the two-sided spreads over every chunk that starts a window or more away."""
    from scaledl.monitor.calibrated import _side_spreads

    rng = np.random.default_rng(3)
    sequence = rng.normal(size=(1500, 5))
    sequence[300:700] += 2.0 * rng.normal(size=5)
    size = 120
    calibration = calibrate(sequence, size, out_of_sample=True)
    starts = np.unique(np.linspace(0, len(sequence) - size, 400).astype(np.int64))
    cumulative = np.concatenate([np.zeros((1, 5)), np.cumsum(sequence, axis=0)])
    means = (cumulative[starts + size] - cumulative[starts]) / size
    expected = []
    for j, start in enumerate(starts):
        others = means[np.abs(starts - start) >= size]
        center = np.median(others, axis=0)
        upper, lower = _side_spreads(others - center)
        deviation = means[j] - center
        scaled = np.where(deviation >= 0, deviation / upper, deviation / lower)
        expected.append(np.abs(scaled).max())
    np.testing.assert_allclose(calibration.maxima, expected, rtol=1e-12)
    in_sample = calibrate(sequence, size)
    assert np.quantile(calibration.maxima, 0.95) > np.quantile(in_sample.maxima, 0.95)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_sensor_that_leaves_its_partner_is_caught_by_its_gap(seed: int) -> None:
    """The load and the temperature wander together with the weeks. An offset of 2 training σ
    on the load stays inside the range its own level wandered through (a profile without gaps
    misses it), but the temperature no longer predicts it: `load.level_gap` moves past its
    tolerance (1 σ). An offset within the tolerance is not scored by the gap at all."""
    rows = wandering(4000, seed)
    reference = rows[:3000]
    spec = spec_of(reference)
    x = windows(reference)[: -HORIZON - 1]
    y = np.stack([reference[s : s + HORIZON, :1] for s in np.arange(len(x)) + LOOKBACK])
    profile = series_profile(x, y, spec, persistence, history_raw=windows(reference))
    base = len(feature_names(spec))
    assert profile.meta["feature_names"][base:] == [
        f"{var}.{feature}_gap"
        for feature in ("level", "floor", "spread", "roughness")
        for var in ("load", "temp")
    ]
    assert profile.meta["tolerance"][:base] == [0.0] * base
    assert align_profile(load_profile(profile.to_bytes()), spec, "new.npz").projection.k == len(
        profile.meta["feature_names"]
    )
    older = align_profile(
        with_features(profile, profile.features[:, :base], feature_names(spec)), spec, "old.npz"
    )

    def watch(which: ReferenceProfile, offset: float) -> dict[str, object]:
        later = rows[3000 : 3000 + N + LOOKBACK].copy()
        later[:, 0] += offset * spec.std[0]
        features = which.projection.transform(window_features(spec, windows(later)[:N]))
        return detect_drift(which, Window(features), CONFIG).to_json()["tests"][0]

    assert watch(older, 2.0)["p_value"] > CONFIG.alpha  # inside the seasons' range
    caught = watch(profile, 2.0)
    assert caught["p_value"] <= CONFIG.alpha
    assert caught["top_features"][0]["feature"] == "load.level_gap", caught
    within = watch(profile, 0.5)["top_features"]
    gaps = {f["feature"]: f["z"] for f in within if f["feature"].endswith("_gap")}
    assert all(z == 0 for z in gaps.values()), within


def test_a_deviation_within_its_tolerance_scores_zero_and_beyond_only_the_excess() -> None:
    rng = np.random.default_rng(3)
    sequence = rng.normal(0.0, 0.01, (2000, 2))
    plain = calibrate(sequence, 50)
    banded = calibrate(sequence, 50, tolerance=np.array([0.0, 0.5]))
    shifted = np.full((50, 2), 0.4)  # far out for the first feature, in band for the second
    z = banded.scores(shifted)
    assert abs(z[0]) > 20 and z[1] == 0.0
    assert plain.scores(shifted)[1] > 20
    beyond = np.full((50, 2), 0.0)
    beyond[:, 1] = 0.6
    excess = banded.scores(beyond)[1]
    assert 0 < excess < plain.scores(beyond)[1] / 4  # only 0.1 of the 0.6 counts
    assert banded.p_value(beyond)[0] < 0.01


@pytest.mark.parametrize("forge", ["short", "text", "negative", "nan", "booleans"])
def test_a_profile_with_a_forged_tolerance_is_refused(
    spec: SeriesSpec, profile: ReferenceProfile, forge: str
) -> None:
    width = profile.features.shape[1]
    tolerance = {
        "short": [0.1],
        "text": "1",
        "negative": [-1.0] * width,
        "nan": [float("nan")] * width,
        "booleans": [True] * width,
    }[forge]
    forged = dataclasses.replace(profile, meta={**profile.meta, "tolerance": tolerance})
    with pytest.raises(PackageError, match="tolerance"):
        align_profile(forged, spec, "forged.npz")


def test_a_relation_that_wandered_in_the_reference_gets_a_wider_tolerance(spec: SeriesSpec) -> None:
    """Two sensors whose levels move together, except for one stretch of the reference where the
    first ran 2 σ above what the second predicts: that gap's tolerance covers the stretch (its
    fit on the other half never saw it), a steady relation keeps the default."""
    from scaledl.modalities.series.drift import GAP_TOLERANCE, fit_gaps

    rng = np.random.default_rng(4)
    rows = 4000
    common = np.cumsum(rng.normal(0, 0.05, rows))
    features = rng.normal(0, 0.01, (rows, len(feature_names(spec))))
    features[:, 0] = common + rng.normal(0, 0.02, rows)  # load.level
    features[:, 1] = common + rng.normal(0, 0.02, rows)  # temp.level
    steady = fit_gaps(spec, features)
    level_gap = steady.names.index("load.level_gap")
    assert steady.tolerance[level_gap] == GAP_TOLERANCE["level"]
    features[1500:1800, 0] += 2.0
    wandered = fit_gaps(spec, features)
    assert wandered.tolerance[level_gap] >= 1.5, wandered.tolerance
    assert fit_gaps(spec, features[:10]).names == []  # too short to fit and check a relation


@pytest.mark.parametrize("forge", ["nan-row", "edited-own-row"])
def test_a_profile_with_forged_gap_rows_is_refused(
    spec: SeriesSpec, profile: ReferenceProfile, forge: str
) -> None:
    """The gap rows come from the profile file: a non-finite one, or a projection that no longer
    keeps the window's own features as they are, is refused naming the file."""
    components = profile.projection.components.copy()
    own = len(feature_names(spec))
    assert len(components) > own  # the fixture's profile has gaps
    if forge == "nan-row":
        components[-1, 0] = np.nan
    else:
        components[0, 0] = 3.0
    forged = dataclasses.replace(
        profile, projection=dataclasses.replace(profile.projection, components=components)
    )
    with pytest.raises(PackageError, match=r"forged\.npz"):
        align_profile(forged, spec, "forged.npz")


def test_a_sensors_features_are_grouped_by_their_names() -> None:
    from scaledl.monitor.calibrated import groups_by_prefix

    names = ["load.level", "temp.level", "load.floor", "load.level_gap", "a.b.level", "a.b.step"]
    assert groups_by_prefix(names, 6).tolist() == [0, 1, 0, 0, 2, 2]  # "a.b" is one sensor
    assert groups_by_prefix(names, 7) is None  # names that do not cover the features
    assert groups_by_prefix(["load.level", "temp.level"], 2) is None  # no sensor has two
    assert groups_by_prefix(["level", "load.level"], 2) is None  # an unnamed sensor
    forged: list = ["load.level", 7, None]  # a profile file's names are not trusted
    assert groups_by_prefix(forged, 3) is None


def test_summing_a_sensors_features_catches_a_fault_that_moves_several_a_little() -> None:
    """Two sensors of three features each. A fault moves all three of one sensor by a little
    (2 spreads of a chunk mean each): the sensor's sum stands out more often than its largest
    single feature. On fresh data of the same kind both alarm at about alpha."""
    rng = np.random.default_rng(5)
    size, groups = 50, np.array([0, 0, 0, 1, 1, 1])
    reference = rng.normal(0.0, 1.0, (20_000, 6))
    single = calibrate(reference, size)
    summed = calibrate(reference, size, groups=groups)
    shift = np.zeros(6)
    shift[:3] = 2.0 / np.sqrt(size)  # 2 standard deviations of a chunk mean
    faulty = [rng.normal(0.0, 1.0, (size, 6)) + shift for _ in range(200)]
    caught_single = np.mean([single.p_value(w)[0] <= 0.05 for w in faulty])
    caught_summed = np.mean([summed.p_value(w)[0] <= 0.05 for w in faulty])
    assert caught_summed > 0.75 and caught_summed > caught_single + 0.08, (
        caught_summed,
        caught_single,
    )
    normal = [rng.normal(0.0, 1.0, (size, 6)) for _ in range(600)]
    for calibration in (single, summed):
        rate = np.mean([calibration.p_value(w)[0] <= 0.05 for w in normal])
        assert rate <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 600), rate


@pytest.mark.parametrize("score", ["sensor", "feature"])
def test_the_windows_score_is_a_choice_of_the_drift_config(
    series: np.ndarray, spec: SeriesSpec, profile: ReferenceProfile, score: str
) -> None:
    later = series[REFERENCE_ROWS : REFERENCE_ROWS + N + LOOKBACK]
    features = profile.projection.transform(window_features(spec, windows(later)[:N]))
    config = DriftConfig(tests=["windows"], min_samples=20, windows_score=score)
    detail = detect_drift(profile, Window(features), config).to_json()["tests"][0]
    assert ("top_group" in detail) == (score == "sensor"), detail
    if score == "sensor":
        assert detail["top_group"]["group"] in spec.inputs
        assert detail["score"] == pytest.approx(detail["top_group"]["score"], abs=1e-3)
        assert detail["score_rule"] == "largest sum of |z| over a group"


def test_a_sensors_features_count_in_units_of_their_own_null_tail() -> None:
    """Two sensors of two features. One feature of each has "seasons" (stretches lifted by 1.5
    now and then): its chunk means have a wide tail. A fault moves the other, quiet feature of
    sensor 0 by 4 spreads of a chunk mean. Unweighted, the seasonal feature's tail sets the bar
    of the sensor's sum; in units of each feature's own null tail, the quiet one's shift stands
    out. On fresh data of the same kind both keep alpha."""
    rng = np.random.default_rng(7)
    size, groups = 50, np.array([0, 0, 1, 1])

    def series(rows: int) -> np.ndarray:
        x = rng.normal(0.0, 1.0, (rows, 4))
        for feature in (0, 2):
            for start in range(0, rows, 400):
                if rng.random() < 0.1:
                    x[start : start + 400, feature] += rng.choice([-1, 1]) * 1.5
        return x

    reference = series(40_000)
    weighted = calibrate(reference, size, out_of_sample=True, groups=groups)
    plain = calibrate(reference, size, out_of_sample=True, groups=groups, tail_quantile=None)
    assert weighted.weights is not None and plain.weights is None
    assert weighted.weights[0] < weighted.weights[1]  # the seasonal feature counts less
    shift = np.array([0.0, 4.0 / np.sqrt(size), 0.0, 0.0])
    fresh = series(200 * size)
    faulty = [fresh[i * size : (i + 1) * size] + shift for i in range(200)]
    caught = {
        name: np.mean([c.p_value(w)[0] <= 0.05 for w in faulty])
        for name, c in (("weighted", weighted), ("plain", plain))
    }
    assert caught["weighted"] > 0.7 and caught["weighted"] > caught["plain"] + 0.1, caught
    normal_rows = series(1200 * size)
    normal = [normal_rows[i * size : (i + 1) * size] for i in range(1200)]
    for calibration in (weighted, plain):
        rate = np.mean([calibration.p_value(w)[0] <= 0.05 for w in normal])
        assert rate <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 1200), rate
