"""Load drivers for bench/serve.py: wrk (HTTP), h2load (gRPC) and the in-process ORT loop.

python bench/serve_load.py PACKAGE THREADS SECONDS   # the in-process loop, prints JSON

gRPC load comes from h2load (nghttp2's HTTP/2 load generator, C, Debian package
nghttp2-client): a gRPC call is an HTTP/2 POST of a length-prefixed protobuf message, so
h2load replays one serialized ModelInferRequest, like wrk replays one HTTP body, with one
connection per concurrent call (as wrk). h2load counts HTTP statuses only, and a failed gRPC
call is an HTTP 200 whose grpc-status trailer says so, with no message: successes are counted
from the response bytes (every answer of a server has the same length, measured by a real
gRPC call first), the rest reported as `non2xx`.
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
            if httpx.get(url, timeout=2).status_code == 200:  # readiness: 400/503 until ready
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


def grpc_frame(message: bytes) -> bytes:
    """A gRPC length-prefixed message: not compressed (0), 4-byte big-endian length, bytes."""
    return b"\0" + len(message).to_bytes(4, "big") + message


def h2load(
    target: str,
    method: str,
    body: Path,
    headers: dict[str, str],
    connections: int,
    seconds: float,
    answer_bytes: int,
    work: Path,
) -> dict[str, Any]:
    """`connections` concurrent unary calls of `method` on HOST:PORT for `seconds`.

    `answer_bytes` is the framed length of one successful answer (see the module docstring).
    """
    log = work / "h2load.log"
    log.unlink(missing_ok=True)  # h2load appends to its log file
    cmd = ["h2load", "-t1", f"-c{connections}", "-m1", f"-D{max(1, round(seconds))}"]
    cmd += ["-d", str(body), f"--log-file={log}", "-H", "content-type: application/grpc"]
    cmd += ["-H", "te: trailers"]
    for key, value in headers.items():
        cmd += ["-H", f"{key.lower()}: {value}"]
    cmd.append(f"http://{target}{method}")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True)
    done = _h2load_number(out.stdout, r"requests: \d+ total, \d+ started, (\d+) done")
    data = _h2load_number(out.stdout, r"\((\d+)\) data")
    elapsed = _h2load_seconds(out.stdout)
    times = sorted(int(line.split("\t")[2]) for line in log.read_text().splitlines() if line)
    answered = data // answer_bytes if answer_bytes else 0
    return {
        "requests": answered,
        "rps": answered / elapsed,
        "duration_us": int(elapsed * 1e6),
        "non2xx": max(0, done - answered),
        "socket_errors": _h2load_number(out.stdout, r"(\d+) errored"),
        "p50_us": times[len(times) // 2] if times else 0,
        "p99_us": times[min(len(times) - 1, int(0.99 * len(times)))] if times else 0,
    }


def _h2load_number(text: str, pattern: str) -> int:
    import re

    found = re.search(pattern, text)
    if found is None:
        raise RuntimeError(f"h2load output has no {pattern!r}:\n{text[-2000:]}")
    return int(found.group(1))


def _h2load_seconds(text: str) -> float:
    import re

    found = re.search(r"finished in ([\d.]+)(ms|s),", text)
    if found is None:
        raise RuntimeError(f"h2load output has no duration:\n{text[-2000:]}")
    value = float(found.group(1))
    return value / 1000 if found.group(2) == "ms" else value


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
