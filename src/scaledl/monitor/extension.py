"""The server extension: live windows per served model version, feedback, metrics, alerts,
and the dashboard.

Enable it with `scaledl serve … --monitor [--alert-webhook URL] [--monitor-window N]`, or in
code: `create_app(settings, extensions=[MonitorExtension(MonitorConfig(...))])`.
Routes (same API keys as the server):
- `POST /v2/models/{m}/feedback` (infer): `{"id": REQUEST_ID, "label": 3}` (or `"labels"` for
  a batch request), or `{"inputs": RAW_ROWS, "labels": [...]}`; optional `"version"`.
- `GET /v2/models/{m}/monitor` (infer): window, last check, live accuracy, alert state.
- `POST /v2/models/{m}/monitor/check` (admin): run a drift check now.
- `GET /dashboard` (infer): charts; `GET /dashboard/data` (infer): the same data as JSON.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import ValidationError

from scaledl.errors import NotFoundError, PackageError, UsageError
from scaledl.evaluate import predict_raw
from scaledl.export.runtime import create_session
from scaledl.monitor.alerts import Alert, WebhookSender
from scaledl.monitor.config import MonitorConfig
from scaledl.monitor.drift import DriftResult
from scaledl.monitor.live import ModelMonitor
from scaledl.monitor.metrics import MonitorMetrics
from scaledl.monitor.reference import (
    input_features,
    package_profile,
    reference_accuracy,
)
from scaledl.monitor.routes import install_routes

if TYPE_CHECKING:
    from fastapi import FastAPI

    from scaledl.package import Package
    from scaledl.serve.extensions import InferenceRecord, ServerContext

log = logging.getLogger(__name__)


class MonitorExtension:
    name = "monitor"

    def __init__(self, config: MonitorConfig | None = None) -> None:
        self.config = config or MonitorConfig()
        self.monitors: dict[tuple[str, str], ModelMonitor] = {}
        self.packages: dict[tuple[str, str], Package] = {}
        self.metrics: MonitorMetrics | None = None
        self.webhook: WebhookSender | None = None
        self._sessions: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- ServerExtension -----------------------------------------------------------------
    def attach(self, app: FastAPI, server: ServerContext) -> None:
        self.metrics = MonitorMetrics(server.metrics_registry)
        if self.config.webhook_url:
            self.webhook = WebhookSender(
                self.config.webhook_url,
                self.config.webhook_timeout_s,
                on_result=self._webhook_result,
            )
        install_routes(app, server, self)
        self._thread = threading.Thread(target=self._loop, name="scaledl-monitor", daemon=True)
        self._thread.start()

    def on_model_loaded(self, model: str, version: str, package: Package) -> None:
        try:
            profile = package_profile(package)
        except PackageError as exc:
            log.warning("%s:%s is monitored without drift tests: %s", model, version, exc)
            profile = None
        labels = package.labels
        reference = reference_accuracy(package, profile)
        monitor = ModelMonitor(
            model,
            version,
            profile,
            self.config,
            num_classes=len(labels) if labels else None,
            reference_accuracy=float(reference) if reference is not None else None,
            listener=self,
        )
        with self._lock:
            self.monitors[(model, version)] = monitor
            self.packages[(model, version)] = package
        log.info("monitoring %s:%s (tests: %s)", model, version, ", ".join(monitor.tests) or "none")

    def on_model_unloaded(self, model: str, version: str) -> None:
        with self._lock:
            monitor = self.monitors.pop((model, version), None)
            self.packages.pop((model, version), None)
            self._sessions.pop((model, version), None)
        if monitor is not None and self.metrics is not None:
            self.metrics.forget(model, version, monitor.tests)

    def on_inference(self, record: InferenceRecord) -> None:
        monitor = self.monitors.get((record.model, record.version))
        if monitor is None or not record.outputs:
            return
        package = self.packages.get((record.model, record.version))
        inputs = next(iter(record.inputs.values()))
        if package is not None and package.manifest.preprocessing is not None:
            inputs = input_features(package.manifest.preprocessing, inputs)
        outputs = next(iter(record.outputs.values()))
        monitor.record(inputs, outputs, record.request_id, record.received_at, record.latency_s)
        if monitor.due():
            self._wake.set()

    # --- Listener (called by ModelMonitor) -----------------------------------------------
    def on_check(self, monitor: ModelMonitor, result: DriftResult) -> None:
        if self.metrics is not None:
            self.metrics.observe_check(monitor.model, monitor.version, result)
            self._observe_window(monitor)

    def on_accuracy(self, monitor: ModelMonitor) -> None:
        if self.metrics is not None:
            value, n = monitor.outcomes.accuracy()
            self.metrics.observe_accuracy(monitor.model, monitor.version, value, n)

    def on_alert(self, monitor: ModelMonitor, alert: Alert) -> None:
        if self.metrics is not None:
            self.metrics.observe_alert(alert.model, alert.version, alert.kind, alert.status)
        if self.webhook is not None:
            self.webhook.send(alert)

    # --- helpers for routes and the background loop ---------------------------------------
    def versions(self, model: str) -> list[ModelMonitor]:
        with self._lock:
            found = [m for (name, _), m in self.monitors.items() if name == model]
        if not found:
            known = sorted({name for name, _ in self.monitors})
            raise NotFoundError(f"model {model!r} is not monitored; monitored: {known or 'none'}")
        return found

    def all_monitors(self) -> list[ModelMonitor]:
        with self._lock:
            return sorted(self.monitors.values(), key=lambda m: (m.model, m.version))

    def monitor_for(self, model: str, version: str | None) -> ModelMonitor:
        found = self.versions(model)
        if version is None:
            return found[-1]  # the most recently loaded version
        for monitor in found:
            if monitor.version == version:
                return monitor
        raise NotFoundError(
            f"model {model!r} has no monitored version {version!r}; "
            f"monitored: {[m.version for m in found]}"
        )

    def predict_raw(self, monitor: ModelMonitor, raw: np.ndarray) -> np.ndarray:
        """Classes the version predicts for raw rows (feedback by inputs)."""
        key = (monitor.model, monitor.version)
        with self._lock:
            package = self.packages[key]
            session = self._sessions.get(key)
            if session is None:
                session = self._sessions[key] = create_session(package.onnx_path, threads=1)
        return np.asarray(predict_raw(package, raw, session)).argmax(axis=1)

    def check_all(self, model: str | None = None) -> list[DriftResult | None]:
        with self._lock:
            monitors = [m for (name, _), m in self.monitors.items() if model in (None, name)]
        return [m.check(current=True) for m in monitors]

    def _observe_window(self, monitor: ModelMonitor) -> None:
        if self.metrics is not None:
            now = monitor.clock()
            self.metrics.observe_window(
                monitor.model,
                monitor.version,
                monitor.window.fill(now),
                len(monitor.window),
                monitor.last_check_at,
            )

    def _loop(self) -> None:
        """Checks run here, off the inference and extension threads."""
        tick = min(1.0, self.config.check_interval_s)
        while not self._stop.is_set():
            self._wake.wait(tick)
            self._wake.clear()
            with self._lock:
                monitors = list(self.monitors.values())
            for monitor in monitors:
                try:
                    if monitor.due():
                        monitor.check()
                    self._observe_window(monitor)
                except Exception:
                    log.exception("drift check of %s:%s failed", monitor.model, monitor.version)

    def _webhook_result(self, ok: bool) -> None:
        if self.metrics is not None:
            self.metrics.webhook.labels("delivered" if ok else "failed").inc()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self.webhook is not None:
            self.webhook.close()


def create_extension(options: dict[str, Any]) -> MonitorExtension:
    """The `--extension monitor` factory: options are MonitorConfig fields."""
    try:
        return MonitorExtension(MonitorConfig.model_validate(options))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise UsageError(f"monitor option {where}: {first['msg']}") from None
