"""What bf16 autocast buys the search's fine-tune on this CPU: the same pruned student distilled
from the same teacher in fp32 and under bf16 autocast, side by side per seed.

The parent is a package trained under bf16 (e.g. `scaledl train examples/cifar10-fast.yaml
--precision bf16`, the one `bench/optimize.py --cases cifar10-fast` uses); the student is its
40 % structured prune, fine-tuned on the search's fine-tune split with the parent's augmentation,
exactly as `prune → distill` does. Writes bench/results/distill_precision.json: seconds per epoch
and validation accuracy per seed and precision, and the CPU's flags (bf16 only pays where the CPU
has bf16 units: AVX512-BF16 or AMX).

    python bench/distill_precision.py --package runs/bench-optimize/cifar10-fast/parent/package
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, write_results
from distill_setup import DistillBench, check_package, parse_seeds, student_parser

PRECISIONS = ("fp32", "bf16")


def main() -> None:
    parent = REPO / "runs" / "bench-optimize" / "cifar10-fast" / "parent" / "package"
    parser = student_parser(__doc__ or "", parent, epochs=1)
    parser.add_argument("--seeds", default="0", help="comma-separated fine-tune seeds")
    args = parser.parse_args()
    seeds = parse_seeds(parser, args.seeds)
    check_package(parser, args.package)

    from scaledl.optimize.distill import DistillConfig

    bench = DistillBench.from_package(args.package)
    ctx = bench.ctx
    runs: list[dict[str, Any]] = []
    for seed in seeds:
        for precision in PRECISIONS:
            config = DistillConfig(epochs=args.epochs, precision=precision)
            result, seconds = bench.distill_pruned(args.ratio, seed, bench.teacher, config)
            run = {
                "seed": seed,
                "precision": result.extra["precision"],
                "seconds_per_epoch": round(seconds / max(len(result.history), 1), 1),
                "val_accuracy": bench.val_accuracy(result.model),
            }
            print(run, flush=True)
            runs.append(run)

    summary = {
        p: {
            "median_seconds_per_epoch": statistics.median(
                r["seconds_per_epoch"] for r in runs if r["precision"] == p
            ),
            "mean_val_accuracy": round(
                statistics.fmean(r["val_accuracy"] for r in runs if r["precision"] == p), 4
            ),
        }
        for p in PRECISIONS
    }
    speedup = summary["fp32"]["median_seconds_per_epoch"] / max(
        summary["bf16"]["median_seconds_per_epoch"], 1e-9
    )
    path = write_results(
        "distill_precision",
        {
            "command": "python " + " ".join(sys.argv),
            "package": str(args.package),
            "cpu_has_bf16": ctx.cpu.has_bf16,
            "ratio": args.ratio,
            "epochs": args.epochs,
            "train_rows": len(ctx.finetune_splits().train),
            "val_rows": len(ctx.splits.val),
            "summary": summary,
            "bf16_speedup": round(speedup, 2),
            "runs": runs,
        },
    )
    print(summary, f"bf16 {speedup:.2f}x per epoch", f"written: {path}", sep="\n")


if __name__ == "__main__":
    main()
