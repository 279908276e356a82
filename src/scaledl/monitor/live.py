"""One served model version, watched: windows, drift checks, live accuracy, alerts, history.

`ModelMonitor` knows nothing of HTTP or Prometheus; whoever owns it (the server extension, a
test, a maintenance loop) passes a `listener` that gets its checks and alerts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from scaledl.errors import NotFoundError, UsageError
from scaledl.monitor.alerts import Alert, Hysteresis
from scaledl.monitor.config import MonitorConfig
from scaledl.monitor.drift import DriftResult, Window, detect_drift, selected_tests
from scaledl.monitor.history import PointSeries, TrafficSeries
from scaledl.monitor.outputs import summarize_outputs
from scaledl.monitor.profile import ReferenceProfile
from scaledl.monitor.window import Outcomes, PendingPredictions, SampleWindow

log = logging.getLogger(__name__)


class Listener(Protocol):
    def on_check(self, monitor: ModelMonitor, result: DriftResult) -> None: ...
    def on_accuracy(self, monitor: ModelMonitor) -> None: ...
    def on_alert(self, monitor: ModelMonitor, alert: Alert) -> None: ...


class ModelMonitor:
    def __init__(
        self,
        model: str,
        version: str,
        profile: ReferenceProfile | None,
        config: MonitorConfig,
        *,
        num_classes: int | None = None,
        reference_accuracy: float | None = None,
        listener: Listener | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.model, self.version = model, version
        self.profile = profile
        self.config = config
        self.listener = listener
        self.clock = clock
        self.classification = profile.task == "classification" if profile else bool(num_classes)
        self.num_classes = (profile.num_classes if profile else None) or num_classes or 0
        self.tests = selected_tests(profile, config.drift) if profile else []
        k = profile.projection.k if profile else 1
        q = profile.output_values.shape[1] if profile and profile.output_values is not None else 1
        self.window = SampleWindow(config.window, k, q, config.window_seconds)
        self.outcomes = Outcomes(config.accuracy_window)
        self.pending = PendingPredictions(config.pending_requests)
        self.traffic = TrafficSeries(config.bucket_seconds, config.history, self.num_classes)
        self.checks = PointSeries(config.history)
        self.accuracy_points = PointSeries(config.history)
        self.alerts = PointSeries(100)
        self.reference_accuracy = reference_accuracy
        self.accuracy_threshold = config.accuracy_threshold
        if self.accuracy_threshold is None and reference_accuracy is not None:
            self.accuracy_threshold = max(0.0, reference_accuracy - config.accuracy_drop)
        self.drift_alarm = Hysteresis(config.fire_after, config.clear_after)
        self.accuracy_alarm = Hysteresis(config.fire_after, config.clear_after)
        self.last_result: DriftResult | None = None
        self.last_check_at: float | None = None
        self.samples_seen = 0
        self._checked_upto = 0  # window sample index where the next check's window starts
        self._check_lock = threading.Lock()

    # --- traffic -------------------------------------------------------------------------
    def record(
        self,
        inputs: np.ndarray,
        outputs: np.ndarray,
        request_id: str,
        received_at: float,
        latency_s: float,
    ) -> None:
        """Summarize one answered request; only the projected features are kept."""
        predicted = score = values = None
        if self.classification and outputs.ndim == 2 and outputs.shape[1] >= 2:
            summary = summarize_outputs(outputs)
            predicted, score = summary.predicted, summary.score
            self.pending.add(request_id, predicted)
        else:
            values = np.asarray(outputs, np.float32).reshape(len(outputs), -1)
        if self.profile is not None:
            features = self.profile.projection.transform(inputs)
            self.window.add(features, received_at, predicted, score, values)
        self.traffic.add(received_at, latency_s, len(outputs), predicted)
        self.samples_seen += len(outputs)

    def due(self, now: float | None = None) -> bool:
        """A check is due when the open window holds `check_every` new samples, or when its
        first sample is `check_interval_s` old and it holds at least `min_samples`.

        A window opens with the first sample after the previous check and holds only samples
        no earlier check saw, so checks are independent tests (a pause in traffic does not
        make the next check re-test old samples).
        """
        if self.profile is None:
            return False
        now = self.clock() if now is None else now
        new, live, opened = self.window.since(self._checked_upto, now)
        if live < self.config.drift.min_samples:
            return False
        if new >= self.config.every:
            return True
        return opened is not None and now - opened >= self.config.check_interval_s

    # --- drift ---------------------------------------------------------------------------
    def check(self, now: float | None = None, current: bool = False) -> DriftResult | None:
        """Test the samples recorded since the last check now (None when there is no profile
        or fewer than `min_samples` of them). `current` (a manual check) tests the whole
        current window instead; later checks still start after it."""
        if self.profile is None:
            return None
        now = self.clock() if now is None else now
        with self._check_lock:
            window: Window
            start = 0 if current else self._checked_upto
            window, upto = self.window.snapshot_since(start, now, self.classification)
            if len(window) < self.config.drift.min_samples:
                return None
            self._checked_upto = upto
            result = detect_drift(self.profile, window, self.config.drift)
            self.last_result, self.last_check_at = result, now
            self.checks.add(
                {
                    "t": now,
                    "p_value": result.p_value,
                    "drift": result.drift,
                    "samples": result.samples,
                    "tests": {t.name: t.p_value for t in result.tests},
                    "scores": {t.name: t.score for t in result.tests},
                }
            )
            change = self.drift_alarm.update(
                bad=result.drift, clean=result.p_value >= self.config.clear_p
            )
        if self.listener:
            self.listener.on_check(self, result)
        if change:
            flagged = [t.name for t in result.tests if t.drift] or ["none"]
            self._alert(
                "drift",
                change,
                result.p_value,
                self.config.drift.alpha,
                f"drift p={result.p_value:.3g} over {result.samples} samples "
                f"(tests: {', '.join(flagged)})",
                {"tests": {t.name: t.p_value for t in result.tests}},
            )
        return result

    # --- accuracy ------------------------------------------------------------------------
    def feedback_for_request(self, request_id: str, labels: np.ndarray) -> int:
        """Labels for an earlier request's samples; returns how many were counted."""
        predicted = self.pending.pop(request_id)
        if predicted is not None and len(predicted) != len(np.asarray(labels).ravel()):
            self.pending.add(request_id, predicted)  # keep it for a corrected retry
            raise UsageError(
                f"request {request_id!r} had {len(predicted)} sample(s) but "
                f"{len(np.asarray(labels).ravel())} label(s) were given; give one per sample"
            )
        if predicted is None:
            raise NotFoundError(
                f"no pending prediction for request id {request_id!r} on {self.model} "
                f"version {self.version} (unknown, already labelled, or older than the last "
                f"{self.config.pending_requests} requests)"
            )
        return self.feedback(predicted, labels)

    def feedback(self, predicted: np.ndarray, labels: np.ndarray) -> int:
        labels = np.asarray(labels).ravel()
        predicted = np.asarray(predicted).ravel()
        if len(labels) != len(predicted):
            raise UsageError(
                f"{len(labels)} label(s) for {len(predicted)} prediction(s); give one per sample"
            )
        self.outcomes.add(predicted == labels)
        self._after_feedback()
        return len(labels)

    def _after_feedback(self) -> None:
        accuracy, n = self.outcomes.accuracy()
        now = self.clock()
        self.accuracy_points.add({"t": now, "accuracy": accuracy, "labels": n})
        if self.listener:
            self.listener.on_accuracy(self)
        threshold = self.accuracy_threshold
        if threshold is None or accuracy is None or n < self.config.min_feedback:
            return
        change = self.accuracy_alarm.update(
            bad=accuracy < threshold, clean=accuracy >= threshold + self.config.accuracy_margin
        )
        if change:
            self._alert(
                "accuracy",
                change,
                accuracy,
                threshold,
                f"live accuracy {accuracy:.3f} over {n} labels (threshold {threshold:.3f})",
                {"labels": n, "reference_accuracy": self.reference_accuracy},
            )

    def _alert(
        self,
        kind: str,
        status: str,
        value: float | None,
        threshold: float,
        message: str,
        details: dict[str, Any],
    ) -> None:
        alert = Alert(
            kind,
            status,
            self.model,
            self.version,
            value,
            threshold,
            message,
            at=self.clock(),
            details=details,
        )
        self.alerts.add(alert.to_json())
        log.warning("alert %s %s for %s:%s: %s", kind, status, self.model, self.version, message)
        if self.listener:
            self.listener.on_alert(self, alert)

    # --- views ---------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        now = self.clock()
        accuracy, labels = self.outcomes.accuracy()
        return {
            "model": self.model,
            "version": self.version,
            "profile": self.profile is not None,
            "tests": self.tests,
            "window": {
                "size": len(self.window),
                "capacity": self.window.capacity,
                "fill": self.window.fill(now),
                "bytes": self.window.nbytes,
            },
            "samples_seen": self.samples_seen,
            "last_check_at": self.last_check_at,
            "last_check": self.last_result.to_json() if self.last_result else None,
            "accuracy": {
                "value": accuracy,
                "labels": labels,
                "threshold": self.accuracy_threshold,
                "reference": self.reference_accuracy,
            },
            "alerts": {"drift": self.drift_alarm.active, "accuracy": self.accuracy_alarm.active},
        }

    def chart_data(self) -> dict[str, Any]:
        now = self.clock()
        return {
            **self.status(),
            "alpha": self.config.drift.alpha,
            "labels": (self.profile.meta.get("labels") if self.profile else None),
            "traffic": self.traffic.series(now),
            "checks": self.checks.list(),
            "accuracy_series": self.accuracy_points.list(),
            "alert_log": self.alerts.list(),
        }
