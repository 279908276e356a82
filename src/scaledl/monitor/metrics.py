"""Prometheus gauges of live monitoring, on the server's own registry (served on /metrics)."""

from __future__ import annotations

import contextlib
from typing import Any

from scaledl.monitor.drift import DriftResult

LABELS = ("model", "version")


class MonitorMetrics:
    def __init__(self, registry: Any) -> None:
        from prometheus_client import Counter, Gauge

        def gauge(name: str, doc: str, extra: tuple[str, ...] = ()) -> Any:
            return Gauge(name, doc, [*LABELS, *extra], registry=registry)

        self.p_value = gauge(
            "scaledl_monitor_drift_p_value",
            "Drift p-value of the last check per test (test=overall: Bonferroni-combined).",
            ("test",),
        )
        self.score = gauge(
            "scaledl_monitor_drift_score",
            "Drift score of the last check per test (KS D, MMD², class-mix distance).",
            ("test",),
        )
        self.drift = gauge("scaledl_monitor_drift_detected", "1 when the last check found drift.")
        self.accuracy = gauge(
            "scaledl_monitor_live_accuracy", "Accuracy over the labelled feedback window."
        )
        self.labels = gauge("scaledl_monitor_feedback_labels", "Labels in the accuracy window.")
        self.error = gauge(
            "scaledl_monitor_live_error",
            "Regressors: mean squared error (standardised when the model has a scale) over "
            "the feedback window of realised values.",
        )
        self.error_samples = gauge(
            "scaledl_monitor_feedback_values", "Regressors: samples in the error window."
        )
        self.fill = gauge("scaledl_monitor_window_fill", "Drift window fill (0–1).")
        self.samples = gauge("scaledl_monitor_window_samples", "Samples in the drift window.")
        self.last_check = gauge(
            "scaledl_monitor_last_check_timestamp_seconds", "Unix time of the last drift check."
        )
        self.alert_active = gauge(
            "scaledl_monitor_alert_active", "1 while an alert is firing.", ("kind",)
        )
        self.alerts = Counter(
            "scaledl_monitor_alerts_total",
            "Alert transitions (firing / resolved).",
            [*LABELS, "kind", "status"],
            registry=registry,
        )
        self.webhook = Counter(
            "scaledl_monitor_webhook_deliveries_total",
            "Alert webhook deliveries by result.",
            ["result"],
            registry=registry,
        )

    def observe_check(self, model: str, version: str, result: DriftResult) -> None:
        for test in result.tests:
            self.p_value.labels(model, version, test.name).set(test.p_value)
            self.score.labels(model, version, test.name).set(test.score)
        self.p_value.labels(model, version, "overall").set(result.p_value)
        self.drift.labels(model, version).set(1.0 if result.drift else 0.0)

    def observe_window(
        self, model: str, version: str, fill: float, size: int, last_check: float | None
    ) -> None:
        self.fill.labels(model, version).set(fill)
        self.samples.labels(model, version).set(size)
        if last_check is not None:
            self.last_check.labels(model, version).set(last_check)

    def observe_accuracy(self, model: str, version: str, value: float | None, n: int) -> None:
        if value is not None:
            self.accuracy.labels(model, version).set(value)
        self.labels.labels(model, version).set(n)

    def observe_error(self, model: str, version: str, value: float | None, n: int) -> None:
        if value is not None:
            self.error.labels(model, version).set(value)
        self.error_samples.labels(model, version).set(n)

    def observe_alert(self, model: str, version: str, kind: str, status: str) -> None:
        self.alerts.labels(model, version, kind, status).inc()
        self.alert_active.labels(model, version, kind).set(1.0 if status == "firing" else 0.0)

    def forget(self, model: str, version: str, tests: list[str]) -> None:
        """Drop an unloaded version's series so /metrics does not keep stale values."""
        for gauge in (
            self.drift,
            self.accuracy,
            self.labels,
            self.error,
            self.error_samples,
            self.fill,
            self.samples,
            self.last_check,
        ):
            _remove(gauge, model, version)
        for test in [*tests, "overall"]:
            _remove(self.p_value, model, version, test)
            _remove(self.score, model, version, test)
        for kind in ("drift", "accuracy", "error"):
            _remove(self.alert_active, model, version, kind)


def _remove(metric: Any, *labels: str) -> None:
    with contextlib.suppress(KeyError):
        metric.remove(*labels)
