"""Serving raw text (bench/text.py): what the server adds over running the same graph in-process.

`scaledl serve PACKAGE` (one worker, one ONNX Runtime thread) gets V2 JSON requests with one
BYTES string — a dev sentence of median length — from wrk: latency at concurrency 1 and
throughput at 64 connections. The in-process reference tokenizes the same text with the same
tokenizer and runs the same graph, one thread, in a loop. Added p50 = served p50 − in-process
p50 (tokenization included on both sides).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from serve_load import free_port, wait_ready, wrk

MODEL_SECONDS = 10.0


def inprocess(package: Path, text: str, seconds: float) -> dict[str, Any]:
    from scaledl.export.runtime import create_session
    from scaledl.package import open_package
    from scaledl.preprocess import apply_preprocessing

    pkg = open_package(package)
    spin = {"session.intra_op.allow_spinning": "0", "session.inter_op.allow_spinning": "0"}
    session = create_session(pkg.onnx_path, threads=1, config=spin)
    spec = pkg.preprocessing
    batch = np.array([text], dtype=object)
    for _ in range(50):
        session.run(None, {"input": apply_preprocessing(batch, spec)})
    times: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        session.run(None, {"input": apply_preprocessing(batch, spec)})
        times.append(time.perf_counter() - start)
    return {"requests": len(times), "p50_us": statistics.median(times) * 1e6}


def serve_section(package: Path, sentences: list[str]) -> dict[str, Any]:
    text = sentences[len(sentences) // 2]
    name = json.loads((package / "manifest.json").read_text())["name"]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [
        sys.executable,
        "-m",
        "scaledl",
        "serve",
        str(package),
        "--no-auth",
        "--port",
        str(port),
        "--threads",
        "1",
    ]
    body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [text]}]}
    with tempfile.TemporaryDirectory(prefix="bench-text-serve-") as tmp:
        work = Path(tmp)
        (work / "body.json").write_text(json.dumps(body))
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_ready(f"{url}/v2/health/ready", proc)
            infer = f"{url}/v2/models/{name}/infer"
            headers = {"Content-Type": "application/json"}
            wrk(infer, work / "body.json", headers, 1, 3, work)  # warm-up
            served_c1 = [
                wrk(infer, work / "body.json", headers, 1, MODEL_SECONDS / 2, work)
                for _ in range(2)
            ]
            local = [inprocess(package, text, MODEL_SECONDS / 2) for _ in range(2)]
            c64 = wrk(infer, work / "body.json", headers, 64, MODEL_SECONDS, work)
        finally:
            proc.terminate()
            proc.wait(30)
    served_p50 = statistics.median(r["p50_us"] for r in served_c1)
    local_p50 = statistics.median(r["p50_us"] for r in local)
    return {
        "text_words": len(text.split()),
        "served_c1_p50_ms": round(served_p50 / 1e3, 4),
        "inprocess_p50_ms": round(local_p50 / 1e3, 4),
        "added_p50_ms": round((served_p50 - local_p50) / 1e3, 4),
        "c64_requests_per_second": round(c64["rps"], 1),
        "c64_p50_ms": round(c64["p50_us"] / 1e3, 3),
        "c64_p99_ms": round(c64["p99_us"] / 1e3, 3),
        "c64_errors": c64["non2xx"] + c64["socket_errors"],
        "server": "scaledl serve, 1 worker, --threads 1, dynamic batching (default)",
        "client": "wrk -t1, V2 JSON with one BYTES string, keep-alive",
    }
