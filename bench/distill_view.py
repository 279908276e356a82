"""What the distillation teacher's mirrored view costs: the same pruned student fine-tuned from a
teacher that averages each image with its mirror (`tta: flip`, as served) and from its one view
(what `scaledl optimize` does), side by side per seed.

The parent is `examples/cifar10-fast.yaml` on the CIFAR-10 subset (1,000 images per class, 10 %
validation) with a short time budget; the student is its 40 % structured prune, fine-tuned for 5
epochs with the parent's augmentation, exactly as the search's `prune → distill` does. Writes
bench/results/distill_view.json: seconds and validation accuracy per seed and view.

    python bench/distill_view.py --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, write_results
from distill_setup import DistillBench, parse_seeds
from optimize import cifar10_subset_parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated fine-tune seeds")
    parser.add_argument("--parent-budget-min", type=float, default=4.0, help="parent training")
    parser.add_argument("--ratio", type=float, default=0.4, help="structured pruning ratio")
    parser.add_argument("--epochs", type=int, default=5, help="fine-tune epochs")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "bench-distill-view")
    parser.add_argument("--reuse", action="store_true", help="reuse a trained parent")
    args = parser.parse_args()
    seeds = parse_seeds(parser, args.seeds)

    import numpy as np
    import torch

    from scaledl.optimize.distill import DistillConfig

    package, overrides = cifar10_subset_parent(args.work, args.parent_budget_min, args.reuse)
    bench = DistillBench.from_package(package)
    teacher = bench.teacher
    if not getattr(teacher, "tta_flip", False):
        raise SystemExit("the parent has no mirrored view (tta: flip); nothing to compare")

    class Mirrored(torch.nn.Module):
        """The same teacher behind a plain forward: the loss sees no mirrored view to skip."""

        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x)

    mirrored = Mirrored(teacher)
    runs: list[dict[str, Any]] = []
    for seed in seeds:
        for view, answer in (("mirrored", mirrored), ("one view", teacher)):
            config = DistillConfig(epochs=args.epochs)
            result, seconds = bench.distill_pruned(args.ratio, seed, answer, config)
            run = {
                "seed": seed,
                "view": view,
                "seconds": round(seconds, 1),
                "val_accuracy": bench.val_accuracy(result.model),
            }
            print(run, flush=True)
            runs.append(run)

    def summary(view: str) -> dict[str, float]:
        mine = [r for r in runs if r["view"] == view]
        return {
            "median_seconds": statistics.median(r["seconds"] for r in mine),
            "mean_val_accuracy": round(float(np.mean([r["val_accuracy"] for r in mine])), 4),
        }

    both = {view: summary(view) for view in ("mirrored", "one view")}
    saved = 1 - both["one view"]["median_seconds"] / both["mirrored"]["median_seconds"]
    path = write_results(
        "distill_view",
        {
            "command": "python " + " ".join(sys.argv),
            "parent": {"recipe": "cifar10-fast", "overrides": overrides},
            "parent_val_accuracy": bench.val_accuracy(teacher),
            "ratio": args.ratio,
            "epochs": args.epochs,
            "val_rows": len(bench.ctx.splits.val),
            "summary": both,
            "median_time_saved": round(saved, 3),
            "runs": runs,
        },
    )
    print(both, f"median time saved {saved:.1%}", f"written: {path}", sep="\n")


if __name__ == "__main__":
    main()
