"""`scaledl optimize` on an ETTh1 forecaster under the error budget, timed against its parent.

    python bench/forecast_optimize.py --package runs/bench-forecast/transformer-96/package

The search runs with `--max-error-increase 0.02` (relative, validation MSE on the standardised
scale) at batch 1 with one thread; then the parent's ONNX graph and the chosen one are timed
side by side (`scaledl bench`: interleaved rounds, same threads, batch 1) and scored on every
test window. Writes the "optimize" section of bench/results/forecast.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import write_section

TARGET_SPEEDUP = 2.0
MAX_ERROR_INCREASE = 0.02


def test_mse(package: Path) -> float:
    from scaledl.evaluate import evaluate_package

    return float(evaluate_package(package).metrics["mse_standardized"])


def main() -> None:
    from scaledl.bench.api import bench_packages
    from scaledl.config.optimize import OptimizeConfig
    from scaledl.optimize.api import optimize_package

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", type=Path, required=True, help="the parent forecaster")
    parser.add_argument("--budget-min", type=float, default=30.0, help="search time budget")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-forecast/optimized"))
    args = parser.parse_args()
    load_before = os.getloadavg()
    started = time.perf_counter()
    config = OptimizeConfig(
        max_error_increase=MAX_ERROR_INCREASE,
        batch_size=1,
        threads=1,
        time_budget_min=args.budget_min,
    )
    result = optimize_package(args.package, config, args.out)
    winner = result.winner
    assert winner is not None and winner.package is not None
    chosen = args.out / winner.package
    timed = bench_packages([args.package, chosen], batch_sizes=(1,), threads=1, rounds=8)
    parent_ms = timed[0].runtimes[0].latency[1].p50_ms
    chosen_ms = timed[1].runtimes[0].latency[1].p50_ms
    parent_mse, chosen_mse = test_mse(args.package), test_mse(chosen)
    cons = result.constraints
    speedup = parent_ms / chosen_ms
    section: dict[str, Any] = {
        "command": "python " + " ".join(sys.argv),
        "parent": str(args.package),
        "chosen": winner.id,
        "transforms": list(winner.transforms),
        "met_budget": result.met,
        "val_error_increase": round(cons.error_increase(winner), 4),
        "parent_ort_fp32_p50_ms_batch1": round(parent_ms, 4),
        "chosen_p50_ms_batch1": round(chosen_ms, 4),
        "speedup": round(speedup, 2),
        "parent_test_mse": round(parent_mse, 4),
        "chosen_test_mse": round(chosen_mse, 4),
        "test_mse_increase": round(chosen_mse / parent_mse - 1, 4),
        "target": {"speedup": TARGET_SPEEDUP, "max_error_increase": MAX_ERROR_INCREASE},
        "target_met": speedup >= TARGET_SPEEDUP and chosen_mse / parent_mse - 1 <= 0.02,
        "skipped": result.skipped,
        "candidates": len(result.candidates),
        "seconds": round(time.perf_counter() - started, 1),
        "machine_load": {
            "loadavg_before": [round(v, 2) for v in load_before],
            "loadavg_after": [round(v, 2) for v in os.getloadavg()],
        },
    }
    write_section("forecast", "optimize", section)
    print(json.dumps({k: section[k] for k in ("chosen", "speedup", "test_mse_increase")}))


if __name__ == "__main__":
    main()
