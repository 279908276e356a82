"""`scaledl bench`: latency percentiles, throughput, memory and size as JSON, eager side by side."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scaledl.bench.latency import LatencyStats, interleaved_rounds, round_noise, time_calls
from tests.conftest import run_cli


def test_latency_stats_and_interleaving() -> None:
    calls = {"a": lambda: sum(range(100)), "b": lambda: sum(range(2000))}
    rounds = interleaved_rounds(calls, rounds=3, seconds_per_round=0.01, warmup=1)
    assert [len(parts) for parts in rounds.values()] == [3, 3]
    stats = {k: LatencyStats.from_samples(np.concatenate(v), 4) for k, v in rounds.items()}
    assert stats["a"].p50_ms <= stats["a"].p95_ms <= stats["a"].p99_ms
    assert stats["a"].throughput == pytest.approx(4 / (stats["a"].mean_ms / 1e3))
    assert stats["a"].p50_ms < stats["b"].p50_ms
    assert round_noise(rounds["a"]) >= 0.0
    # one disturbed round of three does not move the robust p25
    quiet, busy = np.full(50, 1e-3), np.full(50, 9e-3)
    assert LatencyStats.from_rounds([quiet, busy, quiet], 1).p25_ms == pytest.approx(1.0)
    assert LatencyStats.from_rounds([quiet, busy, quiet], 1).p50_ms == pytest.approx(1.0)
    assert LatencyStats.from_rounds([quiet, busy, busy], 1).p25_ms == pytest.approx(9.0)
    assert len(time_calls(lambda: None, warmup=0, min_iterations=7, min_seconds=0.0)) == 7


@pytest.mark.e2e
def test_bench_cli_json(digits_package: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = run_cli(
        "bench",
        str(digits_package),
        "--batch-sizes",
        "1,4",
        "--rounds",
        "2",
        "--seconds",
        "0.05",
        "--json",
        str(out),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(out.read_text())
    assert data["batch_sizes"] == [1, 4] and data["threads"] == 1
    assert "flags" in data["cpu"]
    package = data["packages"][0]
    assert package["model_file_bytes"] == (digits_package / "model.onnx").stat().st_size
    runtimes = {r["runtime"]: r for r in package["runtimes"]}
    assert set(runtimes) == {"onnxruntime", "pytorch-eager-fp32"}
    for runtime in runtimes.values():
        for batch in ("1", "4"):
            stats = runtime["latency"][batch]
            assert 0 < stats["p50_ms"] <= stats["p95_ms"] <= stats["p99_ms"]
            assert stats["throughput"] > 0 and stats["batch_size"] == int(batch)
        assert runtime["memory"]["peak_rss_mb"] is None or runtime["memory"]["peak_rss_mb"] > 0
    assert set(package["speedup_vs_eager_p50"]) == {"1", "4"}


@pytest.mark.e2e
def test_bench_cli_bad_batch_sizes(digits_package: Path) -> None:
    proc = run_cli("bench", str(digits_package), "--batch-sizes", "1,x")
    assert proc.returncode == 2
    assert "--batch-sizes" in proc.stderr + proc.stdout
