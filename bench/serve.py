"""Serving benchmark: `scaledl serve` (HTTP JSON, HTTP binary, gRPC) beside real peers.

    python bench/serve.py            # digits + CIFAR-10 CNNs, 3 interleaved rounds (≈ 30 min)
    python bench/serve.py --quick    # one short round (for development)

Side by side in one run, per model, the same ONNX graph on ONNX Runtime everywhere, with the
same session options and thread count (`--threads`, default: all cores):
  1. in-process ONNX Runtime batch-1 loop (no server), 1 thread and the servers' threads;
  2. `scaledl serve` (API key on, default batching): V2 JSON, V2 binary tensors and V2 gRPC
     (raw contents); binary with batching off (--max-batch-size 1); binary and gRPC with
     `--workers 2 --threads 1`;
  3. real peers, each in its own virtual environment made by this script (bench/serve_peers.py,
     cached): MLServer (V2 JSON, gRPC), KServe's Python model server (V2 JSON, binary, gRPC),
     LitServe (its JSON), each with a small adapter around ONNX Runtime (bench/peers/);
  4. the usual hand-written server: FastAPI + ONNX Runtime (and, at c=64 only, FastAPI + eager
     PyTorch, which mixes the runtime's speed with the server's).
HTTP load comes from `wrk`, gRPC load from `h2load` (both C, one thread, another process,
loopback, bounded in time, one connection per concurrent request) at concurrency 1, 16 and 64.
Cases are interleaved over rounds and medians reported, because this machine is shared and
noisy. Every server's answer is first checked against in-process ONNX Runtime. Writes
bench/results/serve.json (or serve-quick.json with --quick).

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
from serve_load import h2load, wrk
from serve_peers import PEERS, default_cache
from serve_requests import INFER_METHOD, CheckFailed, Sample, Target, check, make_sample
from serve_servers import Servers

BENCH = Path(__file__).resolve().parent
CONCURRENCY = (1, 16, 64)
MODELS = {
    "digits-cnn": ("digits-cnn", ["train.epochs=1"]),
    "cifar10-cnn": ("cifar10-cnn", ["train.epochs=1", "data.limit_per_class=20"]),
}
# case families timed at every concurrency, and those timed at c=64 only
FAMILIES = [
    "scaledl-json",
    "scaledl-binary",
    "scaledl-grpc",
    "fastapi-ort-json",
    "mlserver-json",
    "mlserver-binary",
    "mlserver-grpc",
    "kserve-json",
    "kserve-binary",
    "kserve-grpc",
    "litserve-json",
]
C64_FAMILIES = [
    "scaledl-binary-nobatch",
    "scaledl-binary-2workers",
    "scaledl-grpc-2workers",
    "fastapi-pytorch-json",
]


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


def inprocess(package: Path, threads: int, seconds: float) -> dict[str, Any]:
    """The batch-1 ONNX Runtime loop, in a fresh process like the servers."""
    cmd = [sys.executable, str(BENCH / "serve_load.py"), str(package), str(threads), str(seconds)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def checked_cases(
    model: str, servers: Servers, sample: Sample, threads: int
) -> list[tuple[str, int, Any]]:
    """(case, concurrency, how) for one model, each server's answer checked once first."""
    out: list[tuple[str, int, Any]] = []
    for t in sorted({1, threads}):
        out.append((f"inprocess-ort-t{t}", 1, ("inprocess", t)))
    wanted = [(f, c) for c in CONCURRENCY for f in FAMILIES] + [(f, 64) for f in C64_FAMILIES]
    ready: dict[str, Target] = {}
    for family in dict.fromkeys(f for f, _ in wanted):
        target = servers.targets.get(family, {}).get(model)
        if target is None:
            continue
        try:
            size = check(target, sample, servers.auth)
        except (CheckFailed, OSError) as exc:
            servers.errors[f"{family}/{model}"] = f"answer check failed: {exc}"
            print(f"{family} {model}: skipped, {exc}", flush=True)
            continue
        ready[family] = Target(
            target.protocol, target.address, target.body, target.auth, {"size": size}
        )
    out += [(f, c, ready[f]) for f, c in wanted if f in ready]
    return out


def run_case(
    how: Any, sample: Sample, auth: dict[str, str], c: int, seconds: float, work: Path
) -> dict[str, Any]:
    if not isinstance(how, Target):
        return inprocess(sample.package, how[1], seconds)
    body, headers = sample.files[how.body]
    headers = {**headers, **(auth if how.auth else {})}
    if how.protocol == "grpc":
        return h2load(how.address, INFER_METHOD, body, headers, c, seconds, how.extra["size"], work)
    return wrk(how.address, body, headers, c, seconds, work)


def measure(
    samples: dict[str, Sample],
    servers: Servers,
    work: Path,
    threads: int,
    rounds: int,
    seconds: float,
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    plan = {m: checked_cases(m, servers, s, threads) for m, s in samples.items()}
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r in range(rounds):
        for model, cases in plan.items():
            for name, c, how in cases:
                stats = run_case(how, samples[model], servers.auth, c, seconds, work)
                key = f"{name}@c{c}"
                results.setdefault(model, {}).setdefault(key, []).append(stats)
                rps, p50 = stats["rps"], stats["p50_us"] / 1000
                bad = stats.get("non2xx", 0) + stats.get("socket_errors", 0)
                print(
                    f"round {r + 1} {model:12s} {key:32s} {rps:9.1f} req/s  p50 {p50:7.2f} ms"
                    + (f"  {bad} failed" if bad else ""),
                    flush=True,
                )
    return results


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
    return {"table": table, "targets": verdicts(table)}


def verdicts(table: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """scaledl against the in-process loop, the hand-written servers and each peer."""

    def rps(key: str) -> float | None:
        return table[key]["rps"] if key in table else None

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 2) if a and b else None

    inproc = {k: v for k, v in table.items() if k.startswith("inprocess")}
    best = max(v["rps"] for v in inproc.values())
    fastest_p50 = min(v["p50_ms"] for v in inproc.values())
    out: dict[str, Any] = {"inprocess_reference_rps": best}
    for kind in ("json", "binary", "grpc", "binary-2workers", "grpc-2workers"):
        c64 = rps(f"scaledl-{kind}@c64")
        c1 = table.get(f"scaledl-{kind}@c1")
        added = round(c1["p50_ms"] - fastest_p50, 3) if c1 else None
        out[kind] = {
            "c64_vs_inprocess": ratio(c64, best),
            "c64_vs_fastapi_ort": ratio(c64, rps("fastapi-ort-json@c64")),
            "c64_vs_fastapi_pytorch": ratio(c64, rps("fastapi-pytorch-json@c64")),
            "c1_added_p50_ms": added,
            "meets_100pct_inprocess": c64 >= best if c64 else None,
            "meets_1ms_added_p50": added <= 1.0 if added is not None else None,
        }
    # the same protocol on both sides: scaledl's req/s over the peer's, per concurrency
    pairs = {"json": "scaledl-json", "binary": "scaledl-binary", "grpc": "scaledl-grpc"}
    peers = ["mlserver-json", "mlserver-binary", "mlserver-grpc", "kserve-json", "kserve-binary"]
    peers += ["kserve-grpc"]
    peers += ["litserve-json", "fastapi-ort-json"]
    out["vs_peers"] = {
        f"{peer}@c{c}": ratio(rps(f"{pairs[peer.rsplit('-', 1)[1]]}@c{c}"), rps(f"{peer}@c{c}"))
        for peer in peers
        for c in CONCURRENCY
        if f"{peer}@c{c}" in table
    }
    return out


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
        help="ONNX Runtime threads for every server (default: all cores)",
    )
    parser.add_argument(
        "--peers", nargs="*", choices=list(PEERS), default=list(PEERS), help="peers to run"
    )
    parser.add_argument(
        "--peer-cache", type=Path, default=default_cache(), help="the peers' virtual environments"
    )
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench-serve", help="packages")
    parser.add_argument("--cifar10", type=Path, default=CIFAR10, help="CIFAR-10 image folders")
    args = parser.parse_args()
    for tool, package in (("wrk", "wrk"), ("h2load", "nghttp2-client")):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed: `make bench-serve` installs it (apt {package})")
    rounds = args.rounds or (1 if args.quick else 3)
    seconds = args.seconds or (2.0 if args.quick else 5.0)
    names = args.models or list(MODELS)
    if not args.cifar10.is_dir() and "cifar10-cnn" in names:
        print(f"skipping cifar10-cnn: {args.cifar10} not found (pass --cifar10 PATH)")
        names.remove("cifar10-cnn")
    models = {name: prepare_package(name, args.out, args.cifar10) for name in names}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        work = Path(tmp)
        samples = {m: make_sample(p, work, m) for m, p in models.items()}
        servers = Servers(models, work, args.threads)
        try:
            servers.start_scaledl()
            servers.start_fastapi()
            servers.start_peers(args.peers, args.peer_cache)
            limits = {m: servers.batch_limits(m) for m in models}
            measured = measure(samples, servers, work, args.threads, rounds, seconds)
        finally:
            servers.stop()
    results = {m: {**summarize(s), "batch_limit": limits[m]} for m, s in measured.items()}
    settings = {
        "rounds": rounds,
        "seconds_per_case": seconds,
        "server_threads": args.threads,
        "load": {"http": "wrk -t1 -cC", "grpc": "h2load -t1 -cC -m1 (one call per connection)"},
        "concurrency": list(CONCURRENCY),
        # other jobs on the machine slow every case alike (interleaved), but not by nothing
        "loadavg_1_5_15": {"before": load_before, "after": os.getloadavg()},
    }
    peers = {name: {"versions": v} for name, v in servers.versions.items()}
    for name in args.peers:
        peers.setdefault(name, {})["requirements"] = list(PEERS[name].requirements)
        if PEERS[name].why:
            peers[name]["pins"] = PEERS[name].why
    doc = {
        "quick": args.quick,
        "settings": settings,
        "peers": peers,
        "errors": servers.errors,
        "results": results,
    }
    path = write_results("serve-quick" if args.quick else "serve", doc)
    print(json.dumps({m: r["targets"] for m, r in results.items()}, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
