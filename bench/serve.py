"""Serving benchmark: `scaledl serve` against an in-process loop and a hand-written server.

    python bench/serve.py            # digits + CIFAR-10 CNNs, 3 interleaved rounds (≈ 10 min)
    python bench/serve.py --quick    # one short round (for development)

Side by side in one run, per model (the same ONNX graph / PyTorch weights everywhere):
  1. in-process ONNX Runtime batch-1 loop (no HTTP), 1 thread and the server's thread count;
  2. a plain FastAPI endpoint running the PyTorch model per request (bench/serve_baseline.py);
  3. `scaledl serve` (API key on, default batching) with JSON and with binary tensors, plus
     binary with batching off (--max-batch-size 1) to show what batching buys, and binary
     with `--workers 2 --threads 1` (HTTP parsing on both cores too);
HTTP load comes from `wrk` (one thread, another process, loopback only, bounded in time) at
concurrency 1, 16 and 64. Cases are interleaved over rounds and medians reported, because this
machine is shared and noisy. Writes bench/results/serve.json.

The packages are trained for throughput only (1 epoch on a CIFAR-10 subset): weights do not
change speed, the architecture does.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CIFAR10, REPO, write_results
from serve_load import free_port, wait_ready, wrk

BENCH = Path(__file__).resolve().parent
CONCURRENCY = (1, 16, 64)
MODELS = {
    "digits-cnn": ("digits-cnn", ["train.epochs=1"]),
    "cifar10-cnn": ("cifar10-cnn", ["train.epochs=1", "data.limit_per_class=20"]),
}


def prepare_package(name: str, out_root: Path, cifar10: Path) -> Path:
    """Train (once, then reuse) a package for `name` with the project's example recipe."""
    package = out_root / name / "package"
    if (package / "manifest.json").is_file():
        return package
    from scaledl.pipeline.train import train_recipe
    from scaledl.recipe import load_recipe

    recipe_name, overrides = MODELS[name]
    if name.startswith("cifar"):
        overrides = [*overrides, f"data.source={cifar10}"]
    recipe = load_recipe(REPO / "examples" / f"{recipe_name}.yaml", overrides)
    return train_recipe(recipe, out_root / name).package


class Servers:
    """The HTTP servers under test, started once and shared by every round."""

    def __init__(self, packages: dict[str, Path], work: Path, threads: int) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        repo = work / "repo"
        for name, package in packages.items():
            shutil.copytree(package, repo / name / "1")
        from scaledl.serve.keys import create_key

        self.key, _ = create_key(work / "keys.json", "infer")
        base = [str(repo), "--api-keys", str(work / "keys.json"), "--log-level", "warning"]
        common = [*base, "--threads", str(threads)]
        self.scaledl = self._start_scaledl(common)
        self.nobatch = self._start_scaledl([*common, "--max-batch-size", "1"])
        self.workers2 = self._start_scaledl([*base, "--threads", "1", "--workers", "2"])
        self.baseline: dict[str, str] = {}
        for name, package in packages.items():
            port = free_port()
            env = {**os.environ, "BASELINE_PACKAGE": str(package)}
            cmd = [
                sys.executable,
                "-m",
                "uvicorn",
                "serve_baseline:create",
                "--factory",
                "--app-dir",
                str(BENCH),
                "--port",
                str(port),
                "--log-level",
                "warning",
            ]
            self._spawn(cmd, env, f"http://127.0.0.1:{port}/docs")
            self.baseline[name] = f"http://127.0.0.1:{port}/predict"

    def _start_scaledl(self, args: list[str]) -> str:
        port = free_port()
        cmd = [sys.executable, "-m", "scaledl", "serve", *args, "--port", str(port)]
        url = f"http://127.0.0.1:{port}"
        self._spawn(cmd, dict(os.environ), url + "/v2/health/ready")
        return url

    def _spawn(self, cmd: list[str], env: dict[str, str], ready_url: str) -> None:
        proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL)
        self.procs.append(proc)
        wait_ready(ready_url, proc)

    def batch_limits(self, model: str) -> dict[str, Any]:
        """What each scaledl server chose for `model` (batch cap measured at load)."""
        import httpx

        out = {}
        auth = {"Authorization": f"Bearer {self.key}"}
        for name, url in (("default", self.scaledl), ("2workers", self.workers2)):
            config = httpx.get(f"{url}/v2/models/{model}/config", headers=auth).json()
            out[name] = config["dynamic_batching"]["preferred_batch_size"][0]
        return out

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


def bodies(package: Path, work: Path, name: str) -> dict[str, Any]:
    """Request bodies for one sample: V2 JSON, V2 binary, and the baseline's JSON."""
    import numpy as np

    from scaledl.package import open_package

    shape = open_package(package).manifest.signature.input.shape[1:]
    x = np.random.default_rng(0).normal(size=(1, *shape)).astype(np.float32)
    v2 = {
        "inputs": [
            {
                "name": "input",
                "shape": list(x.shape),
                "datatype": "FP32",
                "data": x.ravel().tolist(),
            }
        ]
    }
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": list(x.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": x.nbytes},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    files = {
        "json": (json.dumps(v2).encode(), {"Content-Type": "application/json"}),
        "binary": (
            head + x.tobytes(),
            {
                "Content-Type": "application/octet-stream",
                "Inference-Header-Content-Length": str(len(head)),
            },
        ),
        "baseline": (
            json.dumps({"data": x.ravel().tolist()}).encode(),
            {"Content-Type": "application/json"},
        ),
    }
    out = {}
    for kind, (body, headers) in files.items():
        path = work / f"{name}-{kind}.body"
        path.write_bytes(body)
        out[kind] = (path, headers)
    return out


def inprocess(package: Path, threads: int, seconds: float) -> dict[str, Any]:
    """The batch-1 ONNX Runtime loop, in a fresh process like the servers."""
    cmd = [sys.executable, str(BENCH / "serve_load.py"), str(package), str(threads), str(seconds)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def cases(model: str, servers: Servers, threads: int) -> list[tuple[str, int, Any]]:
    """(case name, concurrency, how to run it) for one model."""
    out: list[tuple[str, int, Any]] = []
    for t in sorted({1, threads}):
        out.append((f"inprocess-ort-t{t}", 1, ("inprocess", t)))
    for c in CONCURRENCY:
        out.append(("fastapi-pytorch-json", c, ("http", servers.baseline[model], "baseline")))
        out.append(
            ("scaledl-json", c, ("http", f"{servers.scaledl}/v2/models/{model}/infer", "json"))
        )
        out.append(
            ("scaledl-binary", c, ("http", f"{servers.scaledl}/v2/models/{model}/infer", "binary"))
        )
    url = f"{servers.nobatch}/v2/models/{model}/infer"
    out.append(("scaledl-binary-nobatch", 64, ("http", url, "binary")))
    url = f"{servers.workers2}/v2/models/{model}/infer"
    out.append(("scaledl-binary-2workers", 64, ("http", url, "binary")))
    return out


def measure(
    models: dict[str, Path], servers: Servers, work: Path, threads: int, rounds: int, seconds: float
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {}
    payloads = {m: bodies(p, work, m) for m, p in models.items()}
    auth = {"Authorization": f"Bearer {servers.key}"}
    for r in range(rounds):
        for model, package in models.items():
            for name, c, how in cases(model, servers, threads):
                if how[0] == "inprocess":
                    stats = inprocess(package, how[1], seconds)
                else:
                    body, headers = payloads[model][how[2]]
                    if how[2] != "baseline":
                        headers = {**headers, **auth}
                    stats = wrk(how[1], body, headers, c, seconds, work)
                key = f"{name}@c{c}"
                samples.setdefault(model, {}).setdefault(key, []).append(stats)
                rps, p50 = stats["rps"], stats["p50_us"] / 1000
                print(
                    f"round {r + 1} {model:12s} {key:30s} {rps:9.1f} req/s  p50 {p50:7.2f} ms",
                    flush=True,
                )
    return samples


def summarize(samples: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    table = {}
    for key, runs in samples.items():
        table[key] = {
            "rps": round(statistics.median(s["rps"] for s in runs), 1),
            "p50_ms": round(statistics.median(s["p50_us"] for s in runs) / 1000, 3),
            "p99_ms": round(
                statistics.median(s.get("p99_us", s["p50_us"]) for s in runs) / 1000, 3
            ),
            "non2xx": sum(s.get("non2xx", 0) for s in runs),
            "socket_errors": sum(s.get("socket_errors", 0) for s in runs),
            "rounds": len(runs),
        }
    inproc = {k: v for k, v in table.items() if k.startswith("inprocess")}
    best = max(inproc.values(), key=lambda v: v["rps"])
    fastest_p50 = min(v["p50_ms"] for v in inproc.values())
    base64 = table["fastapi-pytorch-json@c64"]["rps"]
    verdict: dict[str, Any] = {"inprocess_reference_rps": best["rps"]}
    for kind in ("json", "binary", "binary-2workers"):
        c64 = table[f"scaledl-{kind}@c64"]["rps"]
        c1 = table.get(f"scaledl-{kind}@c1")
        added = c1["p50_ms"] - fastest_p50 if c1 else None
        verdict[kind] = {
            "c64_vs_fastapi": round(c64 / base64, 2),
            "c64_vs_inprocess": round(c64 / best["rps"], 2),
            "c1_added_p50_ms": round(added, 3) if added is not None else None,
            "meets_2_5x_fastapi": c64 >= 2.5 * base64,
            "meets_100pct_inprocess": c64 >= best["rps"],
            "meets_1ms_added_p50": added <= 1.0 if added is not None else None,
        }
    return {"table": table, "targets": verdict}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="one short round")
    parser.add_argument("--models", nargs="*", choices=list(MODELS), help="only these models")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per case (default 5)")
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="ONNX Runtime threads for the server (default: all cores)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench-serve", help="packages")
    parser.add_argument("--cifar10", type=Path, default=CIFAR10, help="CIFAR-10 image folders")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: `make bench-serve` installs it (apt-get install wrk)")
    rounds = args.rounds or (1 if args.quick else 3)
    seconds = args.seconds or (2.0 if args.quick else 5.0)
    names = args.models or list(MODELS)
    if not args.cifar10.is_dir() and "cifar10-cnn" in names:
        print(f"skipping cifar10-cnn: {args.cifar10} not found (pass --cifar10 PATH)")
        names.remove("cifar10-cnn")
    models = {name: prepare_package(name, args.out, args.cifar10) for name in names}
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        work = Path(tmp)
        servers = Servers(models, work, args.threads)
        try:
            limits = {m: servers.batch_limits(m) for m in models}
            samples = measure(models, servers, work, args.threads, rounds, seconds)
        finally:
            servers.stop()
    results = {m: {**summarize(s), "batch_limit": limits[m]} for m, s in samples.items()}
    settings = {
        "rounds": rounds,
        "seconds_per_case": seconds,
        "server_threads": args.threads,
        "wrk_threads": 1,
        "concurrency": list(CONCURRENCY),
    }
    path = write_results("serve", {"quick": args.quick, "settings": settings, "results": results})
    print(json.dumps({m: r["targets"] for m, r in results.items()}, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
