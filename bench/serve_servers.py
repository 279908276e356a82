"""The servers bench/serve.py times, started once and shared by every round.

`scaledl serve` three ways (defaults with gRPC on; batching off; `--workers 2 --threads 1`),
the hand-written FastAPI server (ONNX Runtime, and eager PyTorch for reference), and the real
peers of bench/serve_peers.py. Each server's log goes to a file in the work folder; a server
that fails to install, start or answer correctly is recorded with the error and its cases are
skipped, the rest of the run goes on.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import REPO
from serve_load import free_port, wait_ready
from serve_peers import (
    PEERS,
    PeerCommand,
    PeerError,
    ensure_venv,
    kserve_command,
    litserve_command,
    mlserver_command,
    peer_env,
)
from serve_requests import Target

BENCH = Path(__file__).resolve().parent


class Servers:
    def __init__(self, packages: dict[str, Path], work: Path, threads: int) -> None:
        self.packages, self.work, self.threads = packages, work, threads
        self.procs: list[subprocess.Popen[bytes]] = []
        self.targets: dict[str, dict[str, Target]] = {}  # case family → model → target
        self.errors: dict[str, str] = {}  # server → why it has no numbers
        self.versions: dict[str, dict[str, str]] = {}
        self.scaledl_urls: dict[str, str] = {}
        from scaledl.serve.keys import create_key

        self.key, _ = create_key(work / "keys.json", "infer")
        self.auth = {"Authorization": f"Bearer {self.key}"}

    # ---- scaledl ---------------------------------------------------------------------
    def start_scaledl(self) -> None:
        repo = self.work / "repo"
        for name, package in self.packages.items():
            if not (repo / name / "1").exists():
                import shutil

                shutil.copytree(package, repo / name / "1")
        base = [str(repo), "--api-keys", str(self.work / "keys.json"), "--log-level", "warning"]
        common = [*base, "--threads", str(self.threads)]
        variants = {
            "scaledl": (common, ("json", "binary", "grpc")),
            "scaledl-nobatch": ([*common, "--max-batch-size", "1"], ("binary",)),
            "scaledl-2workers": ([*base, "--threads", "1", "--workers", "2"], ("binary", "grpc")),
        }
        for label, (args, kinds) in variants.items():
            port, grpc_port = free_port(), free_port()
            cmd = [sys.executable, "-m", "scaledl", "serve", *args, "--port", str(port)]
            cmd += ["--grpc-port", str(grpc_port)]
            url = f"http://127.0.0.1:{port}"
            self._spawn(label, cmd, dict(os.environ), url + "/v2/health/ready", REPO)
            self.scaledl_urls[label] = url
            suffix = label.removeprefix("scaledl")
            for kind in kinds:
                family = f"scaledl-{kind}{suffix}"
                for model in self.packages:
                    target = (
                        Target("grpc", f"127.0.0.1:{grpc_port}", "grpc", auth=True)
                        if kind == "grpc"
                        else Target("http", f"{url}/v2/models/{model}/infer", kind, auth=True)
                    )
                    self.targets.setdefault(family, {})[model] = target

    def batch_limits(self, model: str) -> dict[str, Any]:
        """What each scaledl server chose for `model` (batch cap measured at load)."""
        import httpx

        out = {}
        for name in ("scaledl", "scaledl-2workers"):
            config = httpx.get(
                f"{self.scaledl_urls[name]}/v2/models/{model}/config", headers=self.auth
            ).json()
            out[name] = config["dynamic_batching"]["preferred_batch_size"][0]
        return out

    # ---- the hand-written baseline -----------------------------------------------------
    def start_fastapi(self, runtimes: tuple[str, ...] = ("onnxruntime", "pytorch")) -> None:
        for runtime in runtimes:
            family = "fastapi-ort-json" if runtime == "onnxruntime" else "fastapi-pytorch-json"
            for name, package in self.packages.items():
                port = free_port()
                env = {**os.environ, "BASELINE_PACKAGE": str(package)}
                env |= {"BASELINE_RUNTIME": runtime, "BASELINE_THREADS": str(self.threads)}
                cmd = [sys.executable, "-m", "uvicorn", "serve_baseline:create", "--factory"]
                cmd += ["--app-dir", str(BENCH), "--port", str(port), "--log-level", "warning"]
                url = f"http://127.0.0.1:{port}"
                try:
                    self._spawn(f"{family}-{name}", cmd, env, url + "/docs", REPO)
                except RuntimeError as exc:
                    self.errors[family] = str(exc)
                    continue
                self.targets.setdefault(family, {})[name] = Target(
                    "http", url + "/predict", "plain"
                )

    # ---- peers -------------------------------------------------------------------------
    def start_peers(self, names: list[str], cache: Path) -> None:
        for name in names:
            try:
                python, versions = ensure_venv(PEERS[name], cache)
                self.versions[name] = versions
                self._start_peer(name, python)
            except (PeerError, RuntimeError) as exc:
                self.errors[name] = str(exc)
                print(f"{name}: no numbers: {exc}", flush=True)

    def _start_peer(self, name: str, python: Path) -> None:
        if name == "litserve":
            for model, package in self.packages.items():
                command = litserve_command(python, package, self.threads, self.work, free_port())
                self._spawn_peer(f"litserve-{model}", command)
                url = command.endpoints[""]["plain"]
                self.targets.setdefault("litserve-json", {})[model] = Target("http", url, "plain")
            return
        make = mlserver_command if name == "mlserver" else kserve_command
        ports = [free_port() for _ in range(3)]
        command = make(python, self.packages, self.threads, self.work, ports)
        self._spawn_peer(name, command)
        for model, endpoints in command.endpoints.items():
            for kind, address in endpoints.items():
                protocol = "grpc" if kind == "grpc" else "http"
                target = Target(protocol, address, kind)
                self.targets.setdefault(f"{name}-{kind}", {})[model] = target

    def _spawn_peer(self, label: str, command: PeerCommand) -> None:
        self._spawn(label, command.cmd, peer_env(), command.ready_url, command.cwd)

    # ---- processes ---------------------------------------------------------------------
    def _spawn(
        self, label: str, cmd: list[str], env: dict[str, str], ready: str, cwd: Path
    ) -> None:
        log = self.work / f"{label}.log"
        with log.open("wb") as out:
            # its own process group: peers fork workers (LitServe's outlive their parent)
            proc = subprocess.Popen(
                cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.procs.append(proc)
        try:
            wait_ready(ready, proc, timeout=180)
        except RuntimeError as exc:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise RuntimeError(f"{label}: {exc}\n{tail}") from None

    def stop(self) -> None:
        """SIGTERM to each server's process group, SIGKILL to what is left after 60 s."""
        for proc in self.procs:
            _signal_group(proc, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
        time.sleep(1)  # children get their parent's SIGTERM too; give them a moment
        for proc in self.procs:
            _signal_group(proc, signal.SIGKILL)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)  # the group this script made for the server (its pid)
