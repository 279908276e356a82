"""Training-step micro-benchmark: what makes a CIFAR-10 step faster on this machine.

    python bench/train_step.py                       # examples/cifar10-fast.yaml, 200 images/class
    python bench/train_step.py --recipe cifar10-cnn --limit 100 --rounds 3

Each variant trains one short epoch of the recipe (a CIFAR-10 subset, a few steps of the
recipe's own batch) through the real Trainer; variants are interleaved over rounds so a
change in machine load hits them alike. Reported per variant: median samples/s in training
steps (the first step, warm-up, excluded), data-wait fraction and utilisation of the measured
fp32 or bf16 peak, with the 1-minute load average seen around every run.
Writes bench/results/train_step.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CIFAR10, REPO, write_results

# name → (Trainer precision, channels-last, data_workers, prefetch)
VARIANTS: dict[str, tuple[str, bool, int, int]] = {
    "fp32, channels-last (default)": ("fp32", True, 0, 0),
    "fp32, contiguous (NCHW)": ("fp32", False, 0, 0),
    "bf16 autocast, channels-last": ("bf16", True, 0, 0),
    "fp32, prefetch thread (2 ahead)": ("fp32", True, 0, 2),
    "fp32, 1 data worker process": ("fp32", True, 1, 2),
}


def _setup(recipe_name: str, limit: int) -> tuple[Any, Any, Any, Any]:
    from scaledl.data.augment import build_augmenter
    from scaledl.modalities import load_splits
    from scaledl.preprocess import fit_preprocessing
    from scaledl.recipe import load_recipe

    overrides = [f"data.source={CIFAR10}", f"data.limit_per_class={limit}", "train.epochs=1"]
    recipe = load_recipe(REPO / "examples" / f"{recipe_name}.yaml", overrides)
    recipe.train.time_budget_min = None
    splits = load_splits(recipe.data, seed=recipe.seed, task=recipe.task)
    prep = fit_preprocessing(splits)
    return recipe, splits, prep, build_augmenter(recipe.augment, splits.kind)


def run_variant(setup: tuple[Any, Any, Any, Any], variant: tuple[str, bool, int, int]) -> dict:
    from scaledl.pipeline.train import build_model_for, model_spec_for
    from scaledl.train.loop import Trainer

    recipe, splits, prep, augmenter = setup
    precision, channels_last, workers, prefetch = variant
    config = recipe.train.model_copy(update={"data_workers": workers, "prefetch": prefetch})
    model = build_model_for(recipe, model_spec_for(recipe, prep, splits.num_classes))
    trainer = Trainer(
        model, splits, config, prep, seed=recipe.seed, augmenter=augmenter, precision=precision
    )
    trainer.channels_last = channels_last and trainer.channels_last
    load_before = os.getloadavg()[0]
    figures = trainer.fit().extra["utilisation"]
    return {**figures, "load_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipe", default="cifar10-fast", help="a recipe in examples/")
    parser.add_argument("--limit", type=int, default=200, help="CIFAR-10 images per class")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds per variant")
    parser.add_argument("--only", nargs="*", choices=list(VARIANTS), help="run only these")
    args = parser.parse_args()
    if not CIFAR10.is_dir():
        sys.exit(f"{CIFAR10} not found")
    setup = _setup(args.recipe, args.limit)
    names = args.only or list(VARIANTS)
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for _ in range(args.rounds):
        for name in names:
            runs[name].append(run_variant(setup, VARIANTS[name]))
            print(name, runs[name][-1], flush=True)
    rows = []
    base = statistics.median(r["samples_per_second"] for r in runs[names[0]])
    for name in names:
        rates = [r["samples_per_second"] for r in runs[name]]
        rows.append(
            {
                "variant": name,
                "samples_per_second_median": round(statistics.median(rates), 1),
                "speedup_vs_first": round(statistics.median(rates) / base, 3),
                "data_wait_fraction_median": statistics.median(
                    r["data_wait_fraction"] for r in runs[name]
                ),
                "utilisation_median": statistics.median(
                    r.get("utilisation", 0) for r in runs[name]
                ),
                "runs": runs[name],
            }
        )
    result = {"recipe": args.recipe, "images_per_class": args.limit, "rounds": args.rounds}
    path = write_results("train_step", {**result, "results": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
