"""Shared benchmark helpers: machine description, timing summaries, JSON output."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]
CIFAR10 = REPO.parent / "shared" / "datasets" / "cifar10"


def machine() -> dict[str, Any]:
    cpu = "unknown"
    flags: list[str] = []
    try:
        text = Path("/proc/cpuinfo").read_text()
        for line in text.splitlines():
            if line.startswith("model name") and cpu == "unknown":
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
                flags = [f for f in line.split(":", 1)[1].split() if f in wanted]
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cpu_flags": flags,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
    }
    try:
        import onnxruntime
        import torch

        info.update(torch=torch.__version__, onnxruntime=onnxruntime.__version__)
    except ImportError:
        pass
    return info


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50": statistics.median(ordered), "p95": pick(0.95), "p99": pick(0.99)}


def write_results(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"machine": machine(), **data}, indent=2, default=str))
    os.replace(tmp, path)
    return path


def run_logged(
    cmd: list[str], timeout: float, env: dict[str, str] | None = None
) -> tuple[int, str]:
    """A peer's command (its venv's pip or python): (exit code, stdout + stderr); 124 and the
    output so far past `timeout`; 127 when the interpreter itself is missing."""
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
        )
        return proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        return 124, out + f"\n(timed out after {timeout:.0f} s)"
    except OSError as exc:
        return 127, f"{type(exc).__name__}: {exc}"


def last_lines(log: str, lines: int = 12) -> str:
    """The end of a peer's log, for a result that records an error instead of a number."""
    # pip repeats a harmless warning per package for an unreachable local index
    tail = [line for line in log.strip().splitlines() if "WARNING: Location" not in line]
    return "\n".join(tail[-lines:])


def write_section(name: str, key: str, section: dict[str, Any]) -> Path:
    """Replace one section of bench/results/<name>.json, keeping the others (atomic)."""
    path = RESULTS / f"{name}.json"
    doc = json.loads(path.read_text()) if path.is_file() else {"machine": machine()}
    doc[key] = section
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=str))
    os.replace(tmp, path)
    return path
