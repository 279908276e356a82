"""Wall-clock latency of a callable: warm-up, then enough timed calls for stable percentiles.

Machines are shared and noisy, so comparisons run interleaved: every contender gets a short slice
in each of several rounds and its samples are pooled, which spreads background load evenly over
all of them instead of penalizing whoever ran during a busy second.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class LatencyStats:
    """Per-call latency of one batch size (milliseconds) and the throughput it implies."""

    batch_size: int
    # The lower quartile: what a call costs when background load leaves it be. Timed in rounds,
    # it is the median of the per-round lower quartiles (robust to a few disturbed rounds).
    p25_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    iterations: int
    throughput: float  # samples per second at this batch size (batch / mean latency)

    @classmethod
    def from_rounds(cls, parts: list[np.ndarray], batch_size: int) -> LatencyStats:
        """Pooled percentiles, except p25: the median over rounds of each round's p25."""
        stats = cls.from_samples(np.concatenate(parts), batch_size)
        if len(parts) >= 3:
            stats.p25_ms = float(np.median([np.percentile(p, 25) for p in parts]) * 1e3)
        return stats

    def to_json(self) -> dict[str, Any]:
        return {k: round(v, 5) if isinstance(v, float) else v for k, v in self.__dict__.items()}

    @classmethod
    def from_samples(cls, seconds: np.ndarray, batch_size: int) -> LatencyStats:
        ms = np.asarray(seconds, dtype=np.float64) * 1e3
        p25, p50, p95, p99 = np.percentile(ms, [25, 50, 95, 99])
        mean = float(ms.mean())
        return cls(
            batch_size=batch_size,
            p25_ms=float(p25),
            p50_ms=float(p50),
            p95_ms=float(p95),
            p99_ms=float(p99),
            mean_ms=mean,
            min_ms=float(ms.min()),
            iterations=len(ms),
            throughput=batch_size / (mean / 1e3) if mean > 0 else 0.0,
        )


def time_calls(
    fn: Callable[[], Any],
    *,
    warmup: int = 10,
    min_iterations: int = 30,
    min_seconds: float = 0.5,
    max_iterations: int = 100_000,
) -> np.ndarray:
    """Seconds per call, after `warmup` untimed calls, until both minimums are reached."""
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    clock = time.perf_counter
    start = clock()
    while len(samples) < max_iterations:
        t0 = clock()
        fn()
        samples.append(clock() - t0)
        if len(samples) >= min_iterations and clock() - start >= min_seconds:
            break
    return np.asarray(samples)


def interleaved_rounds(
    calls: Mapping[str, Callable[[], Any]],
    *,
    rounds: int = 5,
    seconds_per_round: float = 0.2,
    warmup: int = 10,
    min_iterations: int = 5,
) -> dict[str, list[np.ndarray]]:
    """Time every callable in turn for `rounds` rounds; seconds per call, per round and name."""
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    per_round: dict[str, list[np.ndarray]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            per_round[name].append(
                time_calls(
                    fn, warmup=1, min_iterations=min_iterations, min_seconds=seconds_per_round
                )
            )
    return per_round


def interleaved(calls: Mapping[str, Callable[[], Any]], **options: Any) -> dict[str, np.ndarray]:
    """Like interleaved_rounds, with each name's rounds pooled."""
    rounds = interleaved_rounds(calls, **options)
    return {name: np.concatenate(parts) for name, parts in rounds.items()}


def round_noise(parts: list[np.ndarray], q: float = 25.0) -> float:
    """How much the machine moved the per-round `q`-th percentiles (robust relative spread:
    1.4826 × median absolute deviation / median, which is the std for normal data)."""
    values = np.array([np.percentile(p, q) for p in parts])
    middle = float(np.median(values)) if len(values) else 0.0
    if len(values) < 3 or middle <= 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(values - middle)) / middle)
