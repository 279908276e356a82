"""Ensembles of the benchmarked ETTh1 forecasters: `scaledl ensemble` on the same test windows.

    python bench/forecast_ensemble.py            # after bench/forecast.py, on its packages

Members are chosen by rules fixed before any ensemble is scored, and never by test error:
- `best2_val` (the headline): the two families with the lowest validation MSE, equal weights;
- `all`: every benchmarked family, equal weights (its summed training time is over the
  10-minute limit; reported for comparison).

Each ensemble is built by `scaledl.pipeline.ensemble.ensemble_packages` (one ONNX graph; parity
with the members' average is checked on the way) and scored by that graph on every test window.
Training time of an ensemble is the sum of its members'. Latency: batch 1, one thread, the
ensemble's graph and each member's side by side in interleaved rounds (p50).

With `--seeds N`, the headline pair's two recipes are trained again with seeds 1 … N−1 (the
same recipes, only the seed changes) and ensembled the same way: the spread of the members' and
the ensemble's test MSE over seeds, next to the seed-0 figure. Then every one of those 2 × N
packages joins one ensemble (`pooled`, equal weights): averaging seeds takes out the part of
the error that depends on the seed, which on ETTh1 is large (validation error, on which early
stopping and the choice of families rely, moves against test error from seed to seed).

Writes the "ensemble" section of bench/results/forecast.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, write_section
from forecast import TARGETS, TRAIN_LIMIT_S

RULES = {
    "best2_val": "the two families with the lowest validation MSE, equal weights",
    "all": "every benchmarked family, equal weights",
}


def members_for(rule: str, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ranked = sorted(runs, key=lambda r: r["val_mse"])
    return ranked[:2] if rule == "best2_val" else ranked


def latency(packages: dict[str, Path], rounds: int) -> dict[str, float]:
    """p50 ms at batch 1, one thread, every graph in the same interleaved rounds."""
    from scaledl.bench.latency import LatencyStats, interleaved_rounds
    from scaledl.export.runtime import create_session
    from scaledl.package import open_package
    from scaledl.package_files import read_npz

    calls = {}
    for name, path in packages.items():
        pkg = open_package(path)
        session = create_session(pkg.onnx_path, threads=1)
        x = np.ascontiguousarray(read_npz(pkg, "sample.npz", ("input",))["input"][:1])
        feed = {session.get_inputs()[0].name: x}
        calls[name] = lambda s=session, f=feed: s.run(None, f)
    timed = interleaved_rounds(calls, rounds=rounds, seconds_per_round=0.3)
    return {n: round(LatencyStats.from_rounds(p, 1).p50_ms, 4) for n, p in timed.items()}


def run_rule(
    rule: str, horizon: int, runs: list[dict[str, Any]], out: Path, rounds: int
) -> dict[str, Any]:
    from scaledl.pipeline.ensemble import ensemble_packages

    members = members_for(rule, runs)
    names = [m["model"] for m in members]
    started = time.perf_counter()
    result = ensemble_packages(
        [Path(m["package"]) for m in members],
        out / f"{rule}-{horizon}",
        name=f"etth1-{'-'.join(names)}-{horizon}",
    )
    build_s = time.perf_counter() - started
    metrics = result.metrics
    train_s = sum(m["train_seconds"] for m in members)
    ms = latency(
        {"ensemble": result.path, **{m["model"]: Path(m["package"]) for m in members}}, rounds
    )
    best_member = min(members, key=lambda m: m["test_mse"])
    return {
        "rule": rule,
        "rule_text": RULES[rule],
        "members": [
            {
                "model": m["model"],
                "lookback": m["lookback"],
                "val_mse": m["val_mse"],
                "test_mse": m["test_mse"],
                "train_seconds": m["train_seconds"],
                "package": m["package"],
            }
            for m in members
        ],
        "test_mse": round(metrics["mse_standardized"], 4),
        "test_mae": round(metrics["mae_standardized"], 4),
        "val_mse": round(metrics["val_loss"], 4),
        "test_windows": metrics["test_samples"],
        "best_member_test_mse": best_member["test_mse"],
        "gain_vs_best_member": round(1 - metrics["mse_standardized"] / best_member["test_mse"], 4),
        "target_test_mse": TARGETS.get(horizon),
        "target_met": metrics["mse_standardized"] <= TARGETS.get(horizon, float("inf")),
        "train_seconds": round(train_s, 1),
        "within_train_limit": train_s <= TRAIN_LIMIT_S,
        "build_seconds": round(build_s, 1),
        "latency_p50_ms_batch1": ms,
        "parity_max_error": json.loads((result.path / "manifest.json").read_text())["parity"][
            "max_abs_error"
        ],
        "package": str(result.path),
    }


def seed_spread(
    horizon: int, headline: dict[str, Any], seeds: int, out: Path, threads: int
) -> dict[str, Any]:
    """The headline pair retrained with other seeds: members' and ensemble's test MSE."""
    from forecast import run_model
    from scaledl.pipeline.ensemble import ensemble_packages

    names = [m["model"] for m in headline["members"]]
    rows = [
        {
            "seed": 0,
            "members": {m["model"]: m["test_mse"] for m in headline["members"]},
            "train_seconds": headline["train_seconds"],
            "test_mse": headline["test_mse"],
        }
    ]
    packages = [Path(m["package"]) for m in headline["members"]]
    for seed in range(1, seeds):
        trained = [run_model(n, horizon, out / "seeds", False, threads, seed) for n in names]
        packages += [Path(t["package"]) for t in trained]
        result = ensemble_packages(
            [Path(t["package"]) for t in trained], out / f"seeds/ensemble-{horizon}-seed{seed}"
        )
        rows.append(
            {
                "seed": seed,
                "members": {t["model"]: t["test_mse"] for t in trained},
                "train_seconds": round(sum(t["train_seconds"] for t in trained), 1),
                "test_mse": round(result.metrics["mse_standardized"], 4),
            }
        )
        print(horizon, "seed", seed, json.dumps(rows[-1]), flush=True)
    values = np.array([r["test_mse"] for r in rows])
    pooled = ensemble_packages(packages, out / f"seeds/pooled-{horizon}")
    train_s = sum(r["train_seconds"] for r in rows)
    pooled_row = {
        "members": len(packages),
        "test_mse": round(pooled.metrics["mse_standardized"], 4),
        "test_mae": round(pooled.metrics["mae_standardized"], 4),
        "val_mse": round(pooled.metrics["val_loss"], 4),
        "train_seconds": round(train_s, 1),
        "within_train_limit": train_s <= TRAIN_LIMIT_S,
        "target_met": pooled.metrics["mse_standardized"] <= TARGETS.get(horizon, float("inf")),
        "latency_p50_ms_batch1": latency({"pooled": pooled.path}, 3)["pooled"],
    }
    print(horizon, "pooled", json.dumps(pooled_row), flush=True)
    return {
        "members": names,
        "pooled": pooled_row,
        "runs": rows,
        "test_mse_mean": round(float(values.mean()), 4),
        "test_mse_std": round(float(values.std(ddof=1)), 4) if len(values) > 1 else None,
        "target_met_runs": int((values <= TARGETS.get(horizon, float("inf"))).sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--horizons", default="96,336", help="comma-separated horizons")
    parser.add_argument("--rules", default=",".join(RULES), help=f"of {', '.join(RULES)}")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved latency rounds")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-forecast-ensemble"))
    parser.add_argument(
        "--seeds", type=int, default=1, help="train the best2_val pair with this many seeds"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads for --seeds")
    args = parser.parse_args()
    runs = json.loads((RESULTS / "forecast.json").read_text())["runs"]
    load_before = os.getloadavg()
    rows, spreads = [], {}
    for horizon in (int(h) for h in args.horizons.split(",")):
        at = [r for r in runs if r["horizon"] == horizon and Path(r["package"]).is_dir()]
        if len(at) < 2:
            print(f"horizon {horizon}: fewer than two packages of bench/forecast.py; skipped")
            continue
        for rule in args.rules.split(","):
            row = run_rule(rule, horizon, at, args.out, args.rounds)
            rows.append({"horizon": horizon, **row})
            shown = {k: row[k] for k in ("test_mse", "val_mse", "train_seconds")}
            print(horizon, rule, [m["model"] for m in row["members"]], json.dumps(shown))
            if rule == "best2_val" and args.seeds > 1:
                spreads[str(horizon)] = seed_spread(
                    horizon, row, args.seeds, args.out, args.threads
                )
    section = {
        "command": "python " + " ".join(sys.argv),
        "machine_load": {
            "loadavg_before": [round(v, 2) for v in load_before],
            "loadavg_after": [round(v, 2) for v in os.getloadavg()],
        },
        "runs": rows,
        **({"seeds": spreads} if spreads else {}),
    }
    print(f"wrote {write_section('forecast', 'ensemble', section)}")


if __name__ == "__main__":
    main()
