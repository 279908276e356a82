"""Training benchmark: test accuracy, training time and images/s per recipe.

    python bench/train.py            # digits × 4 families + two CIFAR-10 recipes (≈ 45 min)
    python bench/train.py --quick    # fewer epochs, a CIFAR-10 subset (for development)
    python bench/train.py --only cifar10-fast   # one recipe (its row replaces the earlier one)
    python bench/train.py --only cifar10-fast --precision bf16   # → train-bf16.json

Writes bench/results/train.json (train-<precision>.json for an explicit --precision).
Accuracy is measured on the test split by ONNX Runtime (the graph that would be served),
exactly as `scaledl run` reports it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CIFAR10, REPO, RESULTS, write_results

RECIPES = [
    "digits-mlp",
    "digits-cnn",
    "digits-rnn",
    "digits-transformer",
    "cifar10-cnn",
    "cifar10-fast",
]
QUICK = {
    "digits": ["train.epochs=5"],
    "cifar10-cnn": ["train.epochs=2", "data.limit_per_class=500"],
    "cifar10-fast": ["train.time_budget_min=1", "data.limit_per_class=500"],
}
TARGETS = {
    "cifar10-cnn": {"test_accuracy": 0.85, "total_seconds": 20 * 60},
    "cifar10-fast": {"test_accuracy": 0.88, "total_seconds": 20 * 60},
}


def run_one(name: str, out_root: Path, quick: bool, precision: str = "auto") -> dict:
    from scaledl.evaluate import evaluate_package
    from scaledl.pipeline.train import ScaleOptions, train_recipe
    from scaledl.recipe import load_recipe

    overrides = list(QUICK.get(name, QUICK["digits"])) if quick else []
    if name.startswith("cifar"):
        overrides.append(f"data.source={CIFAR10}")
    recipe = load_recipe(REPO / "examples" / f"{name}.yaml", overrides)
    load_before = os.getloadavg()[0]  # the machine is shared: the load goes with the numbers
    start = time.perf_counter()
    out = out_root / (name if precision == "auto" else f"{name}-{precision}")
    trained = train_recipe(recipe, out, options=ScaleOptions(precision=precision))
    total = time.perf_counter() - start
    manifest = json.loads((trained.package / "manifest.json").read_text())
    accuracy = evaluate_package(trained.package).metrics["accuracy"]
    row = {
        "recipe": name,
        "family": recipe.model.family,
        "test_accuracy": round(accuracy, 4),
        "train_seconds": round(trained.seconds, 1),
        "total_seconds": round(total, 1),
        "images_per_second": round(trained.samples_per_second, 1),
        "epochs_run": len(trained.history),
        "best_epoch": trained.best_epoch,
        "parameters": parameter_count(trained.package),
        "onnx_bytes": (trained.package / "model.onnx").stat().st_size,
        "overrides": overrides,
        "precision": precision,
        "package": str(trained.package),
        "parity_max_abs_error": manifest["parity"]["max_abs_error"],
        "utilisation": trained.extra.get("utilisation", {}),
        "time_budget": trained.extra.get("time_budget"),
        "load_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    if name in TARGETS and not quick:
        goal = TARGETS[name]
        row["targets"] = goal
        row["targets_met"] = accuracy >= goal["test_accuracy"] and total <= goal["total_seconds"]
    summary = ("recipe", "test_accuracy", "total_seconds", "images_per_second", "load_1min")
    print(json.dumps({k: row[k] for k in summary}), flush=True)
    return row


def parameter_count(package: Path) -> int:
    """Learned parameters (batch-norm running statistics excluded)."""
    from safetensors.numpy import load_file

    buffers = ("running_mean", "running_var", "num_batches_tracked")
    weights = load_file(str(package / "weights.safetensors"))
    return sum(int(v.size) for k, v in weights.items() if not k.endswith(buffers))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="few epochs and a CIFAR-10 subset")
    parser.add_argument("--only", nargs="*", choices=RECIPES, help="run only these recipes")
    parser.add_argument(
        "--out", type=Path, default=REPO / "runs" / "bench-train", help="run folders"
    )
    parser.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default="auto",
        help="training precision (as `scaledl train --precision`); not auto: train-<it>.json",
    )
    args = parser.parse_args()
    kind = "train" if args.precision == "auto" else f"train-{args.precision}"
    rows = []
    for name in args.only or RECIPES:
        if name.startswith("cifar") and not CIFAR10.is_dir():
            print(f"skipping {name}: {CIFAR10} not found")
            continue
        rows.append(run_one(name, args.out, args.quick, args.precision))
    # a run of some recipes keeps the other recipes' rows from an earlier run of the same kind
    previous = RESULTS / f"{kind}.json"
    if args.only and previous.is_file():
        earlier = json.loads(previous.read_text())
        if earlier.get("quick") == args.quick:
            fresh = {row["recipe"] for row in rows}
            kept = [row for row in earlier["results"] if row["recipe"] not in fresh]
            rows = sorted(kept + rows, key=lambda row: RECIPES.index(row["recipe"]))
    path = write_results(kind, {"quick": args.quick, "results": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
