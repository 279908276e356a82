"""Why a search's validation drop and its test drop disagree: where the two splits differ.

    python bench/trust_diagnosis.py --case sst2-best --seeds 0,1,2

Reads the runs of `bench/optimize_trust.py` (parents and the candidate packages of each
search) and writes a `diagnosis` section into bench/results/optimize_trust-<results>.json:
- how long the validation and test rows are (tokens of a text model; 0 is padding);
- how many validation and test rows occur inside a training row (sampled), i.e. text the
  model was trained on (SST-2's training file holds every phrase of its sentences, so a
  random validation row is mostly a piece of a training sentence);
- each kept candidate's paired drop on all validation rows, on the validation rows at least
  as long as the test's median, and on the test split;
- every candidate the search scored: its validation and test drop, pooled over the seeds
  (pruned/slimmed models apart from int8 of the parent). A search scores on test only the
  parent and what it packages (the frontier and the winner), a sample picked for its good
  validation scores: run bench/optimize_trust.py with `--keep-all` for the pool to cover every
  candidate; `unscored_on_test` counts the ones left out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, write_section

SAMPLED = 300


def diagnose(seed_dir: Path, seed: int) -> dict[str, Any]:
    from scaledl.config.optimize import OptimizeConfig
    from scaledl.evaluate import run_session
    from scaledl.export.runtime import create_session
    from scaledl.modalities.text.overlap import share_inside
    from scaledl.optimize.context import build_context
    from scaledl.optimize.paired import paired_drop, row_scores
    from scaledl.package import open_package

    ctx = build_context(seed_dir / "parent" / "package", OptimizeConfig())
    splits = ctx.splits
    if splits.kind != "text":
        raise SystemExit(f"{seed_dir}: the diagnosis reads text packages, this is {splits.kind}")
    val_tokens = (ctx.x_val != 0).sum(axis=1)
    test_tokens = (ctx.x_test != 0).sum(axis=1)
    long_rows = val_tokens >= np.median(test_tokens)

    def inside_training(texts: np.ndarray) -> float | None:
        return share_inside(texts, splits.train.x, sample=SAMPLED, seed=seed)

    def scores(package: Path, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        session = create_session(open_package(package).onnx_path.read_bytes())
        return row_scores(run_session(session, x), y, "classification")

    def drop(parent: np.ndarray, child: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        return paired_drop(parent, child, y, "classification", 0.9, seed=seed).to_json()

    yv, yt = splits.val.y, splits.test.y
    parent = seed_dir / "parent" / "package"
    pv, pt = scores(parent, ctx.x_val, yv), scores(parent, ctx.x_test, yt)
    candidates = []
    for package in sorted((seed_dir / "optimized" / "packages").iterdir()):
        cv, ct = scores(package, ctx.x_val, yv), scores(package, ctx.x_test, yt)
        row = {
            "candidate": package.name,
            "val_drop": drop(pv, cv, yv),
            "long_val_drop": drop(pv[long_rows], cv[long_rows], yv[long_rows]),
            "test_drop": drop(pt, ct, yt),
        }
        candidates.append(row)
        points = [row[key]["point"] for key in ("val_drop", "long_val_drop", "test_drop")]
        print(f"seed {seed} {package.name[:44]:44s} drop val/long val/test", points)
    return {
        "seed": seed,
        "tokens_median": {
            "val": float(np.median(val_tokens)),
            "test": float(np.median(test_tokens)),
        },
        "inside_a_training_row": {
            "val": inside_training(splits.val.x),
            "test": inside_training(splits.test.x),
            "sampled": SAMPLED,
        },
        "long_val_rows": int(long_rows.sum()),
        "parent_accuracy": {
            "val": float(pv.mean()),
            "long_val": float(pv[long_rows].mean()),
            "test": float(pt.mean()),
        },
        "candidates": candidates,
        "searched": searched(seed_dir),
    }


def searched(seed_dir: Path) -> dict[str, list[list[float]]]:
    """Every candidate the search scored (packaged or not): [validation drop, test drop] in
    points, apart for pruned/slimmed models and graph-only ones (int8 of the parent)."""
    frontier = json.loads((seed_dir / "optimized" / "frontier.json").read_text())
    pairs: dict[str, list[list[float]]] = {"structural": [], "graph_only": [], "unscored": []}
    for c in frontier["candidates"][1:]:
        if c.get("drop") and not c.get("test_drop"):
            pairs["unscored"].append([round(c["drop"]["point"] * 100, 3)])
        if not c.get("drop") or not c.get("test_drop"):
            continue
        structural = any(t.startswith(("prune", "slim")) for t in c["transforms"])
        pairs["structural" if structural else "graph_only"].append(
            [round(c["drop"]["point"] * 100, 3), round(c["test_drop"]["point"] * 100, 3)]
        )
    return pairs


def pooled(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The mean validation and test drop (points) of every scored candidate over all seeds."""
    out: dict[str, Any] = {
        "unscored_on_test": sum(len(run["searched"].get("unscored", [])) for run in runs)
    }
    for kind in ("structural", "graph_only"):
        pairs = np.array([p for run in runs for p in run["searched"][kind]], dtype=float)
        if len(pairs):
            out[kind] = {
                "candidates": len(pairs),
                "mean_val_drop_pt": round(float(pairs[:, 0].mean()), 3),
                "mean_test_drop_pt": round(float(pairs[:, 1].mean()), 3),
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", default="sst2-best", help="a case of bench/optimize_trust.py")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "bench-optimize-trust")
    parser.add_argument("--results", default="optimize_trust-text", help="results file to extend")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s]
    runs = [diagnose(args.work / args.case / f"seed{seed}", seed) for seed in seeds]
    section = {
        "command": "python " + " ".join(sys.argv),
        "case": args.case,
        "long_rows_rule": "validation rows with at least the test split's median token count",
        "searched_candidates": pooled(runs),
        "runs": runs,
    }
    print(json.dumps(section["searched_candidates"], indent=1))
    print(f"written: {write_section(args.results, 'diagnosis', section)}")


if __name__ == "__main__":
    main()
