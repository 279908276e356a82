"""Would a longer fine-tune rescue a prune that missed the accuracy budget? The search's
structured prune of a parent, distilled for more epochs than its second chance gets, judged by
the search's rule: the paired drop against the parent on the validation rows, with its upper
90 % bound (here on the PyTorch models; the search scores their exported graphs).

The parent is a package trained under bf16 (the fine-tune runs under bf16 autocast, as the
search's does on a CPU with bf16 units). Writes bench/results/distill_longer.json.

    python bench/distill_longer.py --package runs/bench-optimize-val10/cifar10-fast/parent/package \
        --ratio 0.4 --epochs 30
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, write_results
from distill_setup import DistillBench, check_package, student_parser


def main() -> None:
    parent = REPO / "runs" / "bench-optimize-val10" / "cifar10-fast" / "parent" / "package"
    parser = student_parser(__doc__ or "", parent, epochs=30)
    parser.add_argument("--seed", type=int, default=0, help="fine-tune seed")
    args = parser.parse_args()
    check_package(parser, args.package)

    from scaledl.config.optimize import OptimizeConfig
    from scaledl.optimize.distill import DistillConfig
    from scaledl.optimize.paired import paired_drop

    confidence = OptimizeConfig().confidence  # the search's default level

    bench = DistillBench.from_package(args.package)
    ctx = bench.ctx
    config = DistillConfig(epochs=args.epochs, precision="bf16")
    result, seconds = bench.distill_pruned(args.ratio, args.seed, bench.teacher, config)

    val = ctx.splits.val
    parent_rows, student_rows = bench.val_correct(bench.teacher), bench.val_correct(result.model)
    drop = paired_drop(parent_rows, student_rows, val.y, "classification", confidence)
    summary = {
        "command": "python " + " ".join(sys.argv),
        "package": str(args.package),
        "ratio": args.ratio,
        "epochs": args.epochs,
        "epochs_run": len(result.history),
        "seed": args.seed,
        "seconds": round(seconds, 1),
        "val_rows": len(val),
        "drop_pt": round(100 * drop.point, 2),
        "drop_lower_pt": round(100 * drop.lower, 2),
        "drop_upper_pt": round(100 * drop.upper, 2),
        "confidence": confidence,
        "within_1pt_bound": drop.upper <= 0.01,
    }
    path = write_results("distill_longer", summary)
    print(summary, f"written: {path}", sep="\n")


if __name__ == "__main__":
    main()
