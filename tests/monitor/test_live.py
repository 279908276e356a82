"""ModelMonitor without a server: bounded windows, feedback accuracy, alerts with hysteresis."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scaledl.errors import NotFoundError, UsageError
from scaledl.monitor.alerts import Hysteresis
from scaledl.monitor.config import DriftConfig, MonitorConfig
from scaledl.monitor.live import ModelMonitor
from scaledl.monitor.profile import ReferenceProfile
from scaledl.monitor.window import SampleWindow
from tests.monitor.conftest import noisy


class Recorder:
    def __init__(self) -> None:
        self.checks: list[object] = []
        self.alerts: list[object] = []
        self.accuracy = 0

    def on_check(self, monitor: object, result: object) -> None:
        self.checks.append(result)

    def on_accuracy(self, monitor: object) -> None:
        self.accuracy += 1

    def on_alert(self, monitor: object, alert: object) -> None:
        self.alerts.append(alert)


def _predict(package: Path, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from scaledl.monitor.reference import session_predict
    from scaledl.package import open_package
    from scaledl.preprocess import apply_preprocessing

    pkg = open_package(package)
    x = apply_preprocessing(raw, pkg.preprocessing)
    return x, session_predict(pkg)(x)


def test_window_memory_is_bounded_whatever_the_traffic() -> None:
    window = SampleWindow(capacity=100, features=32)
    size = window.nbytes
    rng = np.random.default_rng(0)
    for step in range(500):
        batch = rng.normal(size=(7, 32)).astype(np.float32)
        window.add(batch, when=float(step), predicted=np.zeros(7, int), score=np.zeros(7))
    assert len(window) == 100 and window.nbytes == size
    snap = window.snapshot(now=500.0)
    assert snap.features.shape == (100, 32)
    np.testing.assert_array_equal(snap.features[-7:], batch)  # newest rows, in order
    window.add(rng.normal(size=(250, 32)).astype(np.float32), when=600.0)  # > capacity at once
    assert len(window) == 100


def test_time_window_drops_old_samples() -> None:
    window = SampleWindow(capacity=100, features=2, max_age_s=10.0)
    window.add(np.zeros((30, 2), np.float32), when=0.0)
    window.add(np.ones((20, 2), np.float32), when=8.0)
    assert len(window.snapshot(now=9.0)) == 50
    snap = window.snapshot(now=15.0)
    assert len(snap) == 20 and np.all(snap.features == 1)
    assert window.fill(now=30.0) == 0.0


def test_monitor_keeps_no_payloads_and_memory_stays_flat(
    digits_package: Path,
    digits_profile: ReferenceProfile,
    digits_raw: tuple[np.ndarray, np.ndarray],
) -> None:
    config = MonitorConfig(window=200, pending_requests=50, history=20, bucket_seconds=1.0)
    monitor = ModelMonitor("digits", "1", digits_profile, config)
    x, out = _predict(digits_package, digits_raw[0][:64])
    before = monitor.window.nbytes
    for i in range(400):
        monitor.record(x[i % 60 : i % 60 + 4], out[i % 60 : i % 60 + 4], f"r{i}", float(i), 0.001)
    assert monitor.window.nbytes == before
    assert len(monitor.window) == 200 and len(monitor.pending) == 50
    assert len(monitor.traffic.series(400.0)) <= 21
    assert monitor.samples_seen == 1600


def test_feedback_gives_live_accuracy(
    digits_package: Path,
    digits_profile: ReferenceProfile,
    digits_raw: tuple[np.ndarray, np.ndarray],
) -> None:
    raw, y = digits_raw
    x, out = _predict(digits_package, raw[:100])
    monitor = ModelMonitor("digits", "1", digits_profile, MonitorConfig())
    for i in range(0, 100, 4):
        monitor.record(x[i : i + 4], out[i : i + 4], f"req-{i}", 0.0, 0.001)
    for i in range(0, 100, 4):
        assert monitor.feedback_for_request(f"req-{i}", y[i : i + 4]) == 4
    accuracy, n = monitor.outcomes.accuracy()
    assert n == 100
    assert accuracy == pytest.approx(float((out.argmax(1) == y[:100]).mean()))
    with pytest.raises(NotFoundError):
        monitor.feedback_for_request("req-0", y[:4])  # already labelled
    monitor.record(x[:2], out[:2], "pair", 0.0, 0.001)
    with pytest.raises(UsageError):
        monitor.feedback_for_request("pair", y[:3])
    assert monitor.feedback_for_request("pair", y[:2]) == 2  # kept for a corrected retry


def test_hysteresis_fires_once_and_clears_once() -> None:
    h = Hysteresis(fire_after=2, clear_after=2)
    seq = [(True, False)] * 6 + [(False, False)] + [(False, True)] * 3 + [(True, False)]
    events = [h.update(bad, clean) for bad, clean in seq]
    assert events.count("firing") == 1 and events.count("resolved") == 1
    assert events.index("firing") == 1 and events.index("resolved") == 8


def test_drift_alert_fires_once_with_hysteresis_then_resolves(
    digits_package: Path,
    digits_profile: ReferenceProfile,
    digits_raw: tuple[np.ndarray, np.ndarray],
    digits_heldout: tuple[np.ndarray, np.ndarray],
) -> None:
    raw, _ = digits_raw
    recorder = Recorder()
    # Clean checks count as clean at p ≥ 0.01; drifting ones are far below alpha = 0.001.
    drift = DriftConfig(seed=0, permutations=99, alpha=0.001)
    config = MonitorConfig(window=150, drift=drift, clear_p=0.01)
    monitor = ModelMonitor("digits", "1", digits_profile, config, listener=recorder)
    clean_x, clean_out = _predict(digits_package, digits_heldout[0][:300])
    shift_x, shift_out = _predict(digits_package, noisy(raw[:750]))
    now = 0.0
    for i in range(5):  # five drifting windows in a row
        sl = slice(150 * i, 150 * (i + 1))
        monitor.record(shift_x[sl], shift_out[sl], f"s{i}", now, 0.001)
        assert monitor.due(now)
        result = monitor.check(now)
        assert result is not None and result.drift
        now += 1
    firing = [a for a in recorder.alerts if a.status == "firing"]  # type: ignore[attr-defined]
    assert len(firing) == 1 and firing[0].kind == "drift"  # type: ignore[attr-defined]
    for i in range(4):  # clean traffic again
        sl = slice(75 * (i % 4), 75 * (i % 4) + 150)
        monitor.record(clean_x[sl], clean_out[sl], f"c{i}", now, 0.001)
        monitor.check(now)
        now += 1
    statuses = [a.status for a in recorder.alerts]  # type: ignore[attr-defined]
    assert statuses == ["firing", "resolved"]
    assert len(recorder.checks) == 9


def test_accuracy_alert_fires_once_below_threshold(
    digits_profile: ReferenceProfile,
) -> None:
    recorder = Recorder()
    config = MonitorConfig(accuracy_threshold=0.8, min_feedback=20, accuracy_window=40)
    monitor = ModelMonitor("digits", "1", digits_profile, config, listener=recorder)
    wrong = np.zeros(10, int)
    for _ in range(6):
        monitor.feedback(wrong, np.ones(10, int))  # all wrong
    assert [a.status for a in recorder.alerts] == ["firing"]  # type: ignore[attr-defined]
    for _ in range(6):
        monitor.feedback(wrong, wrong)  # all right again
    assert [a.status for a in recorder.alerts] == ["firing", "resolved"]  # type: ignore[attr-defined]
    assert recorder.accuracy == 12


def test_timed_checks_test_independent_windows_after_a_pause(
    digits_package: Path,
    digits_profile: ReferenceProfile,
    digits_raw: tuple[np.ndarray, np.ndarray],
    digits_heldout: tuple[np.ndarray, np.ndarray],
) -> None:
    """A drifting window, a pause longer than the check interval, then clean traffic: the
    clean traffic is tested on its own, never together with the drifting samples."""
    raw, _ = digits_raw
    clock = [0.0]
    # alpha 0.001: a clean window is very unlikely to alarm by chance; the overlap this
    # guards against gave p ≈ 1e-132 (drifting samples re-tested with the clean ones).
    drift = DriftConfig(seed=0, permutations=99, alpha=0.001)
    config = MonitorConfig(window=100, check_interval_s=30.0, drift=drift, clear_p=0.01)
    monitor = ModelMonitor("digits", "1", digits_profile, config, clock=lambda: clock[0])
    shift_x, shift_out = _predict(digits_package, noisy(raw[:100]))
    clean_x, clean_out = _predict(digits_package, digits_heldout[0][:300])
    monitor.record(shift_x, shift_out, "inverted", clock[0], 0.001)
    assert monitor.due()
    first = monitor.check()
    assert first is not None and first.drift and first.samples == 100
    clock[0] += 120.0  # a pause: the 30 s timer has long expired
    results = []
    for i in range(0, 300, 10):  # clean traffic, a request every second
        monitor.record(clean_x[i : i + 10], clean_out[i : i + 10], f"c{i}", clock[0], 0.001)
        if monitor.due():
            results.append(monitor.check())
        clock[0] += 1.0
    assert results, "no check ran on the clean traffic"
    for result in results:
        assert result is not None and not result.drift, result
    assert sum(r.samples for r in results if r is not None) <= 300  # no sample tested twice
    # and a timed check does run once the window's first sample is 30 s old
    monitor.record(clean_x[:25], clean_out[:25], "late", clock[0], 0.001)
    assert not monitor.due()
    clock[0] += 31.0
    assert monitor.due() and monitor.check().samples == 25  # type: ignore[union-attr]
