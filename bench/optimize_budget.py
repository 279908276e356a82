"""Does `scaledl optimize` keep to its time budget, and what does the final step cost?

The parent is `examples/cifar10-fast.yaml` on the CIFAR-10 subset (1,000 images per class, 10 %
validation: 9,000 training, 1,000 validation and the 10,000 test images) with a short training
budget. A test pass there costs ten validation passes, so a final step that scores or packages
more than it must shows at once. Each budget is one search (1 thread, batch 1). Writes
bench/results/optimize_budget.json: per budget the seconds used, when the search handed over to
the final step, what it had kept for that step and what the step took, the jobs run and
skipped for time, the fine-tunes' epochs (run and planned), what was packaged and scored on
test, and the choice.

    python bench/optimize_budget.py --budgets 10 [--reuse]   # --reuse: the parent trained before
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, write_results
from optimize import cifar10_subset_parent


def one_search(package: Path, budget_min: float, out: Path) -> dict[str, Any]:
    from scaledl.config.optimize import OptimizeConfig
    from scaledl.optimize.api import optimize_package

    result = optimize_package(
        package, OptimizeConfig(time_budget_min=budget_min, threads=1), out=out
    )
    time = result.time_summary()
    ok = [c for c in result.candidates if c.ok]
    winner = result.winner
    parent_ms = result.parent.rank_ms
    return {
        "budget_s": time["budget_s"],
        "used_s": time["used_s"],
        "within_budget": time["used_s"] <= time["budget_s"],
        "search_s": time["search_s"],
        "final_reserved_s": time["final_reserved_s"],
        "final_used_s": round(time["used_s"] - time["search_s"], 1),
        "final_phases_s": time["final_phases_s"],  # estimate (no margin) and used, each
        "jobs_scored": len(ok) - 1,
        "jobs": [c.label for c in result.candidates[1:]],
        "p25_ms": {c.label: round(c.rank_ms, 4) for c in ok},
        "val": {c.label: round(c.val.get("accuracy", float("nan")), 4) for c in ok},
        "fine_tunes": {  # epochs run, and the planned ones where the time left cut them
            c.label: {
                "epochs": c.structure["finetune_epochs"],
                "planned": c.structure.get("shortened_from_epochs", c.structure["finetune_epochs"]),
            }
            for c in ok
            if "finetune_epochs" in c.structure
        },
        "skipped_for_time": [s["method"] for s in result.skipped if "time budget" in s["reason"]],
        "packaged": len(result.kept),
        "scored_on_test": sum(bool(c.test) for c in ok),
        "measured_mean_s": time["measured_mean_s"],
        "chosen": winner.label if winner is not None else None,
        "speedup_vs_parent_p25": round(parent_ms / winner.rank_ms, 3) if winner else None,
        "promise": result.promise(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budgets", default="10", help="comma-separated search budgets, minutes")
    parser.add_argument("--parent-budget-min", type=float, default=4.0, help="parent training")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "bench-optimize-budget")
    parser.add_argument("--reuse", action="store_true", help="reuse a trained parent")
    args = parser.parse_args()
    try:
        budgets = [float(b) for b in args.budgets.split(",") if b.strip()]
    except ValueError:
        parser.error(f"--budgets {args.budgets!r}: expected comma-separated minutes")
    package, overrides = cifar10_subset_parent(args.work, args.parent_budget_min, args.reuse)
    runs = []
    for budget in budgets:
        row = one_search(package, budget, args.work / f"optimized-{budget:g}")
        print(budget, row, flush=True)
        runs.append(row)
    path = write_results(
        "optimize_budget",
        {
            "command": "python bench/optimize_budget.py " + " ".join(sys.argv[1:]),
            "parent": {"recipe": "examples/cifar10-fast.yaml", "overrides": overrides[1:]},
            "runs": runs,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
