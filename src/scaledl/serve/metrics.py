"""Prometheus metrics on one `CollectorRegistry` owned by the server (`server.metrics_registry`).

Extensions register their own metrics on that registry, so one `/metrics` serves everything.
With `--workers N` the supervisor sets `PROMETHEUS_MULTIPROC_DIR` before the workers start;
`/metrics` then aggregates every worker's values (counters and histograms are summed, gauges
are summed over live workers), and extensions must use the standard metric types.

Label children are cached per (model, version, endpoint): a labelled `.labels()` lookup costs
more than the increment itself on the hot path.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (
    0.0002,
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.5,
    1.0,
    2.0,
    5.0,
    10.0,
    30.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
DIFF_BUCKETS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0)
MV = ("model", "version")


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class ServerMetrics:
    """Every metric the server exports (names are documented in the README)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "scaledl_requests",
            "Requests answered, by model, version and endpoint",
            [*MV, "endpoint"],
            registry=r,
        )
        self.failures = Counter(
            "scaledl_request_failures",
            "Requests answered with an error status",
            [*MV, "endpoint", "code"],
            registry=r,
        )
        self.latency = Histogram(
            "scaledl_request_duration_seconds",
            "Request latency inside the server",
            [*MV, "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_time = Histogram(
            "scaledl_queue_duration_seconds",
            "Time a request waited for a batch slot",
            MV,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.compute_time = Histogram(
            "scaledl_compute_duration_seconds",
            "ONNX Runtime time per batch",
            MV,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "scaledl_batch_size",
            "Samples per ONNX Runtime call",
            MV,
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "scaledl_queue_depth",
            "Requests pending (queued or computing) per model version",
            MV,
            registry=r,
            multiprocess_mode="livesum",
        )
        self.inflight = Gauge(
            "scaledl_inflight_requests",
            "HTTP requests being handled",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.loaded = Gauge(
            "scaledl_model_loaded",
            "1 while a model version is loaded (summed over workers)",
            MV,
            registry=r,
            multiprocess_mode="livesum",
        )
        self.load_failures = Counter(
            "scaledl_model_load_failures",
            "Packages refused at load (checksum, signature, graph)",
            MV,
            registry=r,
        )
        self.canary_weight = Gauge(
            "scaledl_canary_weight",
            "Share of a model's traffic routed to its canary version",
            MV,
            registry=r,
            multiprocess_mode="livesum",
        )
        self.shadow_requests = Counter(
            "scaledl_shadow_requests",
            "Requests copied to a shadow version and compared",
            MV,
            registry=r,
        )
        self.shadow_disagreements = Counter(
            "scaledl_shadow_disagreements",
            "Shadow answers whose top class differs from primary",
            MV,
            registry=r,
        )
        self.shadow_diff = Histogram(
            "scaledl_shadow_max_abs_diff",
            "Largest |shadow - primary| output difference",
            MV,
            buckets=DIFF_BUCKETS,
            registry=r,
        )
        self.shadow_dropped = Counter(
            "scaledl_shadow_dropped",
            "Shadow copies skipped because the shadow queue was full",
            MV,
            registry=r,
        )
        self.auth_failures = Counter(
            "scaledl_auth_failures",
            "Requests refused for a missing/invalid key or scope",
            ["code"],
            registry=r,
        )
        self.records_dropped = Counter(
            "scaledl_extension_records_dropped",
            "Inference records not delivered to extensions (their queue was full)",
            registry=r,
        )
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self._queue_children: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._rendering: Any = None

    def queue(self, model: str, version: str) -> tuple[Any, Any]:
        """(queue-time histogram, queue-depth gauge) of one version, looked up once."""
        key = (model, version)
        child = self._queue_children.get(key)
        if child is None:
            child = (self.queue_time.labels(*key), self.queue_depth.labels(*key))
            self._queue_children[key] = child
        return child

    def request_done(self, model: str, version: str, endpoint: str, seconds: float) -> None:
        key = (model, version, endpoint)
        child = self._children.get(key)
        if child is None:
            child = (self.requests.labels(*key), self.latency.labels(*key))
            self._children[key] = child
        child[0].inc()
        child[1].observe(seconds)

    def request_failed(
        self, model: str, version: str, endpoint: str, code: int, seconds: float
    ) -> None:
        self.request_done(model, version, endpoint, seconds)
        self.failures.labels(model, version, endpoint, str(code)).inc()

    async def render_async(self, offload: Any) -> tuple[bytes, str]:
        """`render` on the CPU pool; scrapes that arrive while one renders share its result,
        so however many clients scrape, at most one rendering runs."""
        import asyncio

        if self._rendering is None:
            self._rendering = asyncio.ensure_future(offload.run(self.render))
            self._rendering.add_done_callback(self._rendered)
        return await asyncio.shield(self._rendering)

    def _rendered(self, future: Any) -> None:
        self._rendering = None
        if not future.cancelled():
            future.exception()  # retrieved: the awaiting scrapes got it

    def render(self) -> tuple[bytes, str]:
        """The exposition text for `/metrics` (aggregated over workers when there are several)."""
        if multiprocess_dir():
            from prometheus_client import multiprocess

            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)
            return generate_latest(merged), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
