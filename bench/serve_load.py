"""Load drivers for bench/serve.py: wrk runs and the in-process ONNX Runtime batch-1 loop.

python bench/serve_load.py PACKAGE THREADS SECONDS   # the in-process loop, prints JSON
"""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"non2xx":%d,"socket_errors":%d,"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server {url} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server {url} did not start")


def wrk(
    url: str, body: Path, headers: dict[str, str], connections: int, seconds: float, work: Path
) -> dict[str, Any]:
    lines = [
        f'local f = io.open("{body}", "rb"); wrk.body = f:read("*all"); f:close()',
        'wrk.method = "POST"',
    ]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    script = work / "wrk.lua"
    script.write_text("\n".join(lines) + WRK_DONE)
    cmd = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True)
    stats = json.loads(out.stdout.strip().splitlines()[-1])
    stats["rps"] = stats["requests"] / (stats["duration_us"] / 1e6)
    return stats


def inprocess_loop(package: Path, threads: int, seconds: float) -> None:
    import numpy as np

    from scaledl.export.runtime import create_session
    from scaledl.package import open_package

    pkg = open_package(package)
    shape = pkg.manifest.signature.input.shape[1:]
    spin = {"session.intra_op.allow_spinning": "0", "session.inter_op.allow_spinning": "0"}
    session = create_session(pkg.onnx_path, threads=threads, config=spin)
    x = np.random.default_rng(0).normal(size=(1, *shape)).astype(np.float32)
    for _ in range(20):
        session.run(None, {"input": x})
    times: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        session.run(None, {"input": x})
        times.append(time.perf_counter() - start)
    total = sum(times)
    times.sort()
    stats = {
        "requests": len(times),
        "rps": len(times) / total,
        "p50_us": statistics.median(times) * 1e6,
        "p99_us": times[min(len(times) - 1, int(0.99 * len(times)))] * 1e6,
    }
    print(json.dumps(stats))


if __name__ == "__main__":
    inprocess_loop(Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]))
