"""Time series for the dashboard, bounded: traffic buckets, check results, accuracy points."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

import numpy as np

LATENCY_SAMPLES = 2000  # latencies kept per bucket for its percentiles


class TrafficSeries:
    """Requests, samples, latency percentiles and predicted-class counts per time bucket."""

    def __init__(self, bucket_s: float, points: int, classes: int) -> None:
        self.bucket_s = bucket_s
        self.classes = classes
        self.points: deque[dict[str, Any]] = deque(maxlen=points)
        self._lock = threading.Lock()
        self._start: float | None = None
        self._reset()

    def _reset(self) -> None:
        self._requests = 0
        self._samples = 0
        self._latencies: list[float] = []
        self._class_counts = np.zeros(max(self.classes, 1), np.int64)

    def add(
        self, when: float, latency_s: float, samples: int, predicted: np.ndarray | None
    ) -> None:
        with self._lock:
            self._roll(when)
            self._requests += 1
            self._samples += samples
            if len(self._latencies) < LATENCY_SAMPLES:
                self._latencies.append(latency_s)
            if predicted is not None and self.classes:
                self._class_counts += np.bincount(predicted, minlength=self.classes)[: self.classes]

    def _roll(self, now: float) -> None:
        """Close the current bucket when `now` is past it (empty buckets in between too)."""
        if self._start is None:
            self._start = now - (now % self.bucket_s)
            return
        while now >= self._start + self.bucket_s:
            self.points.append(self._summary())
            self._reset()
            self._start += self.bucket_s
            if now - self._start > self.bucket_s * (self.points.maxlen or 1):
                self._start = now - (now % self.bucket_s)  # a long silence: skip ahead

    def _summary(self) -> dict[str, Any]:
        assert self._start is not None
        lat = np.asarray(self._latencies) * 1000.0
        return {
            "t": self._start,
            "requests": self._requests,
            "samples": self._samples,
            "rps": self._requests / self.bucket_s,
            "latency_p50_ms": float(np.percentile(lat, 50)) if lat.size else None,
            "latency_p95_ms": float(np.percentile(lat, 95)) if lat.size else None,
            "classes": self._class_counts.tolist() if self.classes else [],
        }

    def series(self, now: float) -> list[dict[str, Any]]:
        """Closed buckets plus the current (partial) one."""
        with self._lock:
            self._roll(now)
            current = [self._summary()] if self._start is not None and self._requests else []
            return [*self.points, *current]


class PointSeries:
    """A bounded list of timestamped points (check results, accuracy, alerts)."""

    def __init__(self, points: int) -> None:
        self.points: deque[dict[str, Any]] = deque(maxlen=points)
        self._lock = threading.Lock()

    def add(self, point: dict[str, Any]) -> None:
        with self._lock:
            self.points.append(point)

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.points)

    def last(self) -> dict[str, Any] | None:
        with self._lock:
            return self.points[-1] if self.points else None
