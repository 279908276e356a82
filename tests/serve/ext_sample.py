"""A tiny real server extension, used by the tests of the extension point."""

from __future__ import annotations

import threading
from typing import Any

from prometheus_client import Counter


class RecorderExtension:
    name = "recorder"

    def __init__(self, options: dict[str, Any]) -> None:
        self.lock = threading.Lock()
        self.loaded: list[list[str]] = []
        self.unloaded: list[list[str]] = []
        self.records: list[dict[str, Any]] = []
        self.counter: Any = None

    def attach(self, app: Any, server: Any) -> None:
        self.counter = Counter(
            "recorder_records",
            "Records seen by the test extension",
            ["model"],
            registry=server.metrics_registry,
        )

        @app.get("/v2/recorder", dependencies=[server.require_scope("admin")])
        def dump() -> dict[str, Any]:
            with self.lock:
                return {
                    "loaded": list(self.loaded),
                    "unloaded": list(self.unloaded),
                    "records": list(self.records),
                }

    def on_model_loaded(self, model: str, version: str, package: Any) -> None:
        with self.lock:
            self.loaded.append([model, version, package.manifest.name])

    def on_model_unloaded(self, model: str, version: str) -> None:
        with self.lock:
            self.unloaded.append([model, version])

    def on_inference(self, record: Any) -> None:
        first_in = next(iter(record.inputs.values()))
        first_out = next(iter(record.outputs.values()))
        raw = record.raw_inputs
        with self.lock:
            self.records.append(
                {
                    "model": record.model,
                    "version": record.version,
                    "request_id": record.request_id,
                    "input_shape": list(first_in.shape),
                    "output_shape": list(first_out.shape),
                    "output_sum": float(first_out.astype("float64").sum())
                    if first_out.dtype.kind in "fiub"
                    else None,
                    "latency_s": record.latency_s,
                    "received_at": record.received_at,
                    "raw_shape": None if raw is None else list(raw.shape),
                }
            )
        self.counter.labels(record.model).inc()


def create(options: dict[str, Any]) -> RecorderExtension:
    return RecorderExtension(options)
