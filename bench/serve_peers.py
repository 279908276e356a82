"""Real serving peers for bench/serve.py, each in its own virtual environment, on ONNX Runtime.

Every peer serves the same ONNX graph through a small adapter in bench/peers/ (each is the
peer's documented way to serve a custom model) with the same ONNX Runtime session options as
`scaledl serve` (bench/peers/ort_session.py). The virtual environments live in a cache folder
and are reused while their requirements stay the same. A peer that cannot be installed or
started is recorded with the exact error instead of numbers.

Settings beyond ports and threads: per-request logs off everywhere (scaledl's default;
MLServer `debug: false`, KServe `--enable_latency_logging False`, LitServe log level warning);
otherwise each peer's defaults (MLServer: one parallel inference worker process; KServe: one
uvicorn worker, 4 gRPC threads; LitServe: one inference worker process, no batching).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PEER_CODE = Path(__file__).resolve().parent / "peers"
ORT = "onnxruntime==1.32.0"  # the version the project itself runs


@dataclass(frozen=True)
class PeerSpec:
    name: str
    requirements: tuple[str, ...]
    packages: tuple[str, ...]  # whose versions the results record
    why: dict[str, str] = field(default_factory=dict)  # requirement → why it is pinned


PEERS = {
    "mlserver": PeerSpec(
        "mlserver",
        ("mlserver==1.7.1", ORT, "uvloop<0.22"),
        ("mlserver", "onnxruntime", "uvloop", "fastapi", "uvicorn", "grpcio"),
        {
            "uvloop<0.22": "MLServer 1.7.1's inference workers call asyncio.get_event_loop() "
            "before a loop exists, which uvloop >= 0.22 refuses (RuntimeError: There is no "
            "current event loop in thread 'MainThread')"
        },
    ),
    "kserve": PeerSpec(
        "kserve",
        ("kserve==0.21.0", ORT),
        ("kserve", "onnxruntime", "fastapi", "uvicorn", "grpcio"),
    ),
    "litserve": PeerSpec(
        "litserve",
        ("litserve==0.2.19", ORT),
        ("litserve", "onnxruntime", "fastapi", "uvicorn"),
    ),
}


class PeerError(RuntimeError):
    """A peer could not be installed or started; the message is recorded in the results."""


def default_cache() -> Path:
    base = os.environ.get("SCALEDL_CACHE_DIR") or Path.home() / ".cache" / "scaledl"
    return Path(base) / "bench-serve-peers"


def ensure_venv(spec: PeerSpec, cache: Path) -> tuple[Path, dict[str, str]]:
    """The peer's python (installing it once) and the installed versions of its packages."""
    venv = cache / spec.name
    python = venv / "bin" / "python"
    stamp = venv / ".requirements"
    wanted = "\n".join(spec.requirements)
    if not (python.exists() and stamp.exists() and stamp.read_text() == wanted):
        print(f"installing {spec.name} into {venv} (once; reused afterwards)", flush=True)
        _run([sys.executable, "-m", "venv", "--clear", str(venv)], f"{spec.name}: venv")
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        _run([*pip, *spec.requirements], f"{spec.name}: pip install {' '.join(spec.requirements)}")
        stamp.write_text(wanted)
    code = (
        "import importlib.metadata as m, json, sys;"
        f"print(json.dumps({{p: m.version(p) for p in {list(spec.packages)!r}}}))"
    )
    out = _run([str(python), "-c", code], f"{spec.name}: reading versions")
    return python, json.loads(out.strip().splitlines()[-1])


def _run(cmd: list[str], what: str, timeout: float = 1800) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PeerError(f"{what}: {exc}") from None
    if done.returncode != 0:
        lines = [
            x for x in (done.stderr + done.stdout).splitlines() if "WARNING: Location" not in x
        ]
        raise PeerError(f"{what}: exit {done.returncode}: " + "\n".join(lines[-15:]))
    return done.stdout


@dataclass
class PeerCommand:
    """How to start one peer server process and where it answers."""

    cmd: list[str]
    cwd: Path
    ready_url: str
    endpoints: dict[
        str, dict[str, str]
    ]  # model → {"json"|"binary"|"plain": URL, "grpc": HOST:PORT}


def mlserver_command(
    python: Path, models: dict[str, Path], threads: int, work: Path, ports: list[int]
) -> PeerCommand:
    http, grpc_port, metrics = ports[:3]
    root = work / "mlserver"
    root.mkdir(parents=True, exist_ok=True)
    settings = {"host": "127.0.0.1", "http_port": http, "grpc_port": grpc_port}
    settings |= {"metrics_port": metrics, "debug": False}
    (root / "settings.json").write_text(json.dumps(settings))
    for name, package in models.items():
        (root / name).mkdir(exist_ok=True)
        model_settings = {
            "name": name,
            "implementation": "mlserver_onnx.OnnxModel",
            "parameters": {"uri": str(package / "model.onnx"), "extra": {"threads": threads}},
        }
        (root / name / "model-settings.json").write_text(json.dumps(model_settings))
    base = f"http://127.0.0.1:{http}/v2/models"
    endpoints = {  # binary too: the answer check records what MLServer says to it
        m: {
            "json": f"{base}/{m}/infer",
            "binary": f"{base}/{m}/infer",
            "grpc": f"127.0.0.1:{grpc_port}",
        }
        for m in models
    }
    mlserver = python.parent / "mlserver"
    return PeerCommand(
        [str(mlserver), "start", str(root)],
        root,
        f"http://127.0.0.1:{http}/v2/health/ready",
        endpoints,
    )


def kserve_command(
    python: Path, models: dict[str, Path], threads: int, work: Path, ports: list[int]
) -> PeerCommand:
    http, grpc_port = ports[:2]
    cmd = [str(python), str(PEER_CODE / "kserve_onnx.py"), "--threads", str(threads)]
    for name, package in models.items():
        cmd += ["--model", f"{name}={package / 'model.onnx'}"]
    cmd += ["--http_port", str(http), "--grpc_port", str(grpc_port)]
    cmd += ["--enable_latency_logging", "False"]
    base = f"http://127.0.0.1:{http}/v2/models"
    endpoints = {
        m: {
            "json": f"{base}/{m}/infer",
            "binary": f"{base}/{m}/infer",
            "grpc": f"127.0.0.1:{grpc_port}",
        }
        for m in models
    }
    return PeerCommand(cmd, work, f"http://127.0.0.1:{http}/v2/health/ready", endpoints)


def litserve_command(
    python: Path, package: Path, threads: int, work: Path, port: int
) -> PeerCommand:
    cmd = [str(python), str(PEER_CODE / "litserve_onnx.py"), "--model", str(package / "model.onnx")]
    cmd += ["--threads", str(threads), "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    return PeerCommand(cmd, work, url + "/health", {"": {"plain": url + "/predict"}})


def peer_env() -> dict[str, Any]:
    """The environment of a peer process: its adapter code importable, nothing of ours."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHONPATH"] = str(PEER_CODE)
    return env
