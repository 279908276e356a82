"""Drift-detection benchmark: false-alarm and detection rates per window size, side by side
with a peer (Evidently's default data-drift preset) on the same windows.

    python bench/drift.py [--quick] [--datasets digits,cifar10] [--out bench/results/drift.json]

For each data set a scaledl-trained model and a reference profile built on held-out rows
(see drift_setup.py); windows are drawn without replacement from a clean stream pool the
profile never saw — unshifted (false alarms) or after a shift at two severities (detection).
Windows larger than half the pool are skipped: they would overlap so much that their
outcomes stop being independent trials.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from drift_peer import EvidentlyPeer, available
from drift_setup import Setup, build_setup
from drift_shifts import IMAGE_SHIFTS, PARAMS, SEVERITIES, SHIFTS, class_mix_weights
from scaledl.config.monitor import DriftConfig
from scaledl.monitor.drift import Window, detect_drift
from scaledl.monitor.profile import ReferenceProfile

log = logging.getLogger("bench.drift")
WINDOWS = (50, 100, 200, 500, 1000)
RESULTS = Path(__file__).resolve().parent / "results" / "drift.json"


@dataclass
class Pool:
    """A stream pool, already projected and scored by the model (done once per condition)."""

    profile: ReferenceProfile
    window: Window
    y: np.ndarray

    def take(self, idx: np.ndarray) -> Window:
        w = self.window
        assert w.predicted is not None and w.score is not None
        return Window(w.features[idx], predicted=w.predicted[idx], score=w.score[idx])


def make_pool(setup: Setup, x_raw: np.ndarray) -> Pool:
    from scaledl.monitor.reference import session_predict
    from scaledl.package import open_package
    from scaledl.preprocess import apply_preprocessing

    x = apply_preprocessing(x_raw, setup.preprocessing)
    outputs = session_predict(open_package(setup.package))(x)
    return Pool(setup.profile, Window.from_batch(setup.profile, x, outputs), setup.pool_y)


def wilson(hits: int, n: int) -> list[float]:
    if n == 0:
        return [0.0, 1.0]
    z, p = 1.96, hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def run_condition(
    pool: Pool,
    size: int,
    trials: int,
    rng: np.random.Generator,
    config: DriftConfig,
    peer: EvidentlyPeer | None,
    weights_fn: Any = None,
) -> dict[str, Any]:
    ours = 0
    per_test: dict[str, int] = {}
    peer_hits = 0
    ours_s: list[float] = []
    peer_s: list[float] = []
    for _ in range(trials):
        p = weights_fn(rng) if weights_fn is not None else None
        idx = rng.choice(len(pool.y), size=size, replace=False, p=p)
        window = pool.take(idx)
        start = time.perf_counter()
        result = detect_drift(pool.profile, window, config)
        ours_s.append(time.perf_counter() - start)
        ours += result.drift
        for t in result.tests:
            per_test[t.name] = per_test.get(t.name, 0) + int(t.drift)
        if peer is not None:
            start = time.perf_counter()
            peer_hits += peer.drift(window.features)
            peer_s.append(time.perf_counter() - start)
    row: dict[str, Any] = {
        "trials": trials,
        "rate": round(ours / trials, 4),
        "ci95": wilson(ours, trials),
        "per_test_rate": {k: round(v / trials, 4) for k, v in per_test.items()},
        "check_ms_median": round(1000 * float(np.median(ours_s)), 2),
    }
    if peer is not None:
        row["peer_rate"] = round(peer_hits / trials, 4)
        row["peer_ci95"] = wilson(peer_hits, trials)
        row["peer_ms_median"] = round(1000 * float(np.median(peer_s)), 2)
    return row


def bench_dataset(name: str, args: argparse.Namespace, config: DriftConfig) -> dict[str, Any]:
    setup = build_setup(name, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    peer = EvidentlyPeer(setup.profile.features) if available() and not args.no_peer else None
    clean = make_pool(setup, setup.pool_x)
    limit = len(setup.pool_y) // 2
    sizes = [m for m in args.windows if m <= limit]
    out: dict[str, Any] = {
        **setup.notes,
        "windows": sizes,
        "skipped_windows": {
            str(m): f"more than half of the {len(setup.pool_y)}-row stream pool"
            for m in args.windows
            if m > limit
        },
        "false_alarm": {},
        "detection": {},
    }
    if peer is not None:
        probe = clean.take(rng.choice(len(clean.y), size=sizes[-1], replace=False)).features
        out["peer_matches_report"] = peer.drifted_columns(probe) == peer.report_drifted_columns(
            probe
        )
    for m in sizes:
        out["false_alarm"][str(m)] = run_condition(clean, m, args.clean_trials, rng, config, peer)
        log.info("%s m=%d clean: %s", name, m, out["false_alarm"][str(m)]["rate"])
    for shift in () if args.skip_shifts else (*IMAGE_SHIFTS, "class_mix"):
        for severity in SEVERITIES:
            key = f"{shift}/{severity}"
            param = PARAMS[shift][severity]
            if shift == "class_mix":
                pool, weights = clean, _class_mix(clean.y, param)
            else:
                shifted = SHIFTS[shift](setup.pool_x, param, setup.max_value, rng)
                pool, weights = make_pool(setup, shifted), None
            out["detection"][key] = {
                str(m): run_condition(pool, m, args.shift_trials, rng, config, peer, weights)
                for m in sizes
            }
            log.info(
                "%s %s: %s", name, key, {m: r["rate"] for m, r in out["detection"][key].items()}
            )
    return out


def _class_mix(y: np.ndarray, factor: float) -> Any:
    return lambda rng: class_mix_weights(y, factor, rng)


def summarize(datasets: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for name, res in datasets.items():
        fars = {m: r["rate"] for m, r in res["false_alarm"].items()}
        medium_200 = {
            k: v["200"]["rate"]
            for k, v in res["detection"].items()
            if k.endswith("/medium") and "200" in v
        }
        summary[name] = {
            "false_alarm_max": max(fars.values()),
            "false_alarm_by_window": fars,
            "peer_false_alarm_by_window": {
                m: r.get("peer_rate") for m, r in res["false_alarm"].items()
            },
            "medium_detection_at_200": medium_200,
            "medium_detection_at_200_min": min(medium_200.values()) if medium_200 else None,
        }
    return summary


def merge(files: list[Path], out: Path) -> None:
    """One result file from runs of single data sets (e.g. run in parallel)."""
    parts = [json.loads(f.read_text()) for f in files]
    result = {**parts[0], "datasets": {}, "seconds": max(p["seconds"] for p in parts)}
    for part in parts:
        for name, res in part["datasets"].items():
            if name in result["datasets"] and not res["detection"]:
                # A false-alarm-only run (e.g. another seed: another reference draw).
                extra = result["datasets"][name].setdefault("false_alarm_reruns", [])
                extra.append({"seed": part.get("seed"), "false_alarm": res["false_alarm"]})
            else:
                result["datasets"][name] = res
    result["summary"] = summarize(result["datasets"])
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result["summary"], indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few trials (development)")
    parser.add_argument("--datasets", default="digits,cifar10")
    parser.add_argument("--windows", default=",".join(map(str, WINDOWS)))
    parser.add_argument("--clean-trials", type=int, default=None)
    parser.add_argument("--shift-trials", type=int, default=None)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--no-peer", action="store_true", help="skip the Evidently peer")
    parser.add_argument("--skip-shifts", action="store_true", help="false alarms only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--merge", nargs="+", type=Path, help="combine per-data-set result files into --out"
    )
    args = parser.parse_args()
    if args.merge:
        merge(args.merge, args.out)
        return
    args.windows = [int(v) for v in args.windows.split(",")]
    args.clean_trials = args.clean_trials or (40 if args.quick else 300)
    args.shift_trials = args.shift_trials or (10 if args.quick else 50)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("onnxscript", "onnx_ir", "torch", "scaledl"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    config = DriftConfig(alpha=args.alpha, seed=None)
    started = time.time()
    datasets = {name: bench_dataset(name, args, config) for name in args.datasets.split(",")}
    result = {
        "benchmark": "drift",
        "quick": args.quick,
        "seed": args.seed,
        "alpha": args.alpha,
        "config": config.model_dump(),
        "peer": (f"evidently {available()} DataDriftPreset defaults" if available() else None)
        if not args.no_peer
        else None,
        "shifts": PARAMS,
        "summary": summarize(datasets),
        "datasets": datasets,
        "seconds": round(time.time() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result["summary"], indent=1))


if __name__ == "__main__":
    main()
