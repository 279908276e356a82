"""Optimization benchmark: scaledl optimize vs the single-tool paths, side by side in one process.

    python bench/optimize.py            # digits CNN, CIFAR-10 CNN, digits transformer, digits GRU
    python bench/optimize.py --quick    # shorter training and search budgets, a CIFAR-10 subset
    python bench/optimize.py --cases digits-cnn,digits-rnn --reuse
    python bench/optimize.py --budget-min 10 --cifar-limit 1000   # ≈ 1 h on 2 cores

For each recipe the parent is trained, then seven contenders run the test split and are timed at
batch 1, interleaved round by round with the same thread count: PyTorch eager fp32, ONNX Runtime
fp32, ONNX Runtime static int8 alone, NNCF's accuracy-aware int8 (quantize_with_accuracy_control,
max_drop 0.01 on the validation rows; in its own venv, timed in OpenVINO: bench/optimize_nncf.py)
with the parent in OpenVINO beside it (what that engine costs by itself), Torch-Pruning 50% +
fine-tune alone, and the model `scaledl optimize --max-accuracy-drop 0.01` chooses. Writes
bench/results/optimize.json (optimize-quick.json with --quick; `--results NAME` → NAME.json).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CIFAR10, REPO, RESULTS, machine, write_results
from optimize_baselines import ort_static_int8, torch_pruning_finetune
from optimize_contenders import (
    NNCF,
    THREADS,
    Contender,
    eager_contender,
    nncf_contenders,
    ort_contender,
)
from optimize_nncf import quantize_with_accuracy_control


@dataclass
class Case:
    recipe: str
    kind: str  # cnn | transformer | recurrent: which targets apply
    budget_min: float
    overrides: list[str] = field(default_factory=list)
    quick_overrides: list[str] = field(default_factory=list)
    quick_budget_min: float = 5.0


def find_cifar10() -> Path:
    """`shared/datasets/cifar10` beside the checkout or beside any folder above it."""
    for root in (REPO, *REPO.parents):
        candidate = root / "shared" / "datasets" / "cifar10"
        if candidate.is_dir():
            return candidate
    return CIFAR10


CASES = {
    "digits-cnn": Case("digits-cnn", "cnn", 15.0, quick_overrides=["train.epochs=12"]),
    "cifar10-cnn": Case(
        "cifar10-cnn",
        "cnn",
        45.0,
        overrides=[f"data.source={find_cifar10()}"],
        quick_overrides=["data.limit_per_class=200", "data.val_fraction=0.1", "train.epochs=5"],
        quick_budget_min=10.0,
    ),
    # the time-budgeted airbench-style recipe on full CIFAR-10 (its package doubles as the
    # training benchmark's: `--reuse` with it copied to <work>/cifar10-fast/parent/package)
    "cifar10-fast": Case(
        "cifar10-fast",
        "cnn",
        45.0,
        overrides=[f"data.source={find_cifar10()}"],
        quick_overrides=["data.limit_per_class=200", "data.val_fraction=0.1"],
        quick_budget_min=10.0,
    ),
    "digits-transformer": Case(
        "digits-transformer", "transformer", 15.0, quick_overrides=["train.epochs=20"]
    ),
    "digits-rnn": Case("digits-rnn", "recurrent", 15.0, quick_overrides=["train.epochs=15"]),
    # text: SST-2's bidirectional GRU (the 872 dev sentences are the test split)
    "sst2-gru": Case("sst2-gru", "recurrent", 15.0, quick_overrides=["train.epochs=1"]),
    # the word-piece CNN whose 20-minute search reached 3.77x (bench/text.py --only optimize)
    "sst2-best": Case("sst2-best", "cnn", 20.0, quick_overrides=["train.epochs=1"]),
    # the same recipe split by sentence: validation holds whole sentences none of whose
    # phrases trained (15 % of them: about 1,030, as many as the 872 test sentences)
    "sst2-sentences": Case(
        "sst2-best",
        "cnn",
        20.0,
        overrides=["data.text.group_phrases=true", "data.val_fraction=0.15"],
        quick_overrides=["train.epochs=1"],
    ),
}
QUICK_SETTINGS = {"distill": {"epochs": 3, "slim_epochs": 8}}


def log(case: str, text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {case}: {text}", flush=True)


def run_nncf(
    name: str, work: Path, onnx_path: Path, calibration: np.ndarray, val: Any, test: Any
) -> dict[str, Any]:
    log(name, "NNCF quantize_with_accuracy_control (max_drop 0.01 absolute; its own venv)")
    result = quantize_with_accuracy_control(
        onnx_path, calibration, val, test, work / "nncf", threads=THREADS
    )
    if "error" in result:
        log(name, f"NNCF not run: {result['error'].splitlines()[-1]}")
    return result


def overrides_for(case: Case, quick: bool, cifar_limit: int | None) -> list[str]:
    overrides = case.overrides + (case.quick_overrides if quick else [])
    if cifar_limit and case.recipe.startswith("cifar") and not quick:
        overrides += [f"data.limit_per_class={cifar_limit}", "data.val_fraction=0.1"]
    return overrides


def train_parent(
    name: str, work: Path, recipe_name: str, overrides: list[str], reuse: bool
) -> Path:
    from scaledl.pipeline.train import train_recipe
    from scaledl.recipe import load_recipe

    package = work / "parent" / "package"
    if reuse and (package / "manifest.json").is_file():
        log(name, f"reusing {package}")
        return package
    recipe = load_recipe(REPO / "examples" / f"{recipe_name}.yaml", overrides)
    log(name, f"training the parent ({', '.join(overrides) or 'recipe as is'})")
    return train_recipe(recipe, work / "parent").package


def cifar10_subset_parent(work: Path, budget_min: float, reuse: bool) -> tuple[Path, list[str]]:
    """The cifar10-fast parent on the CIFAR-10 subset (1,000 images per class, 10 % validation:
    9,000 training, 1,000 validation, the 10,000 test images), trained for `budget_min`; its
    package and the overrides it was trained with (the data source first)."""
    overrides = [
        f"data.source={find_cifar10()}",
        "data.limit_per_class=1000",
        "data.val_fraction=0.1",
        f"train.time_budget_min={budget_min:g}",
    ]
    return train_parent("cifar10-fast", work, "cifar10-fast", overrides, reuse), overrides


def run_search(
    name: str, case: Case, parent: Path, work: Path, quick: bool, reuse: bool
) -> dict[str, Any]:
    from scaledl.config.optimize import OptimizeConfig
    from scaledl.optimize.api import optimize_package

    out = work / "optimized"
    budget = case.quick_budget_min if quick else case.budget_min
    if reuse and (out / "frontier.json").is_file():
        log(name, f"reusing the search in {out}")
    else:
        config = OptimizeConfig(
            max_accuracy_drop=0.01,
            time_budget_min=budget,
            threads=THREADS,
            settings=QUICK_SETTINGS if quick else {},
        )
        log(name, f"scaledl optimize (budget {budget:g} min)")
        optimize_package(parent, config, out=out)
    frontier = json.loads((out / "frontier.json").read_text())
    winner = next(c for c in frontier["candidates"] if c["id"] == frontier["best_effort"])
    package = Path(winner["package"])
    return {
        "seconds": frontier["seconds"],
        "budget_s": budget * 60,
        "within_budget": frontier["seconds"] <= budget * 60,
        "met": frontier["met"],
        "chosen": frontier["chosen"],
        "transforms": winner["transforms"],
        "package": str(package if package.is_absolute() else out / package),
        "candidates": len(frontier["candidates"]),
        "skipped": frontier["skipped"],
        "reason": frontier["reason"],
        "timing_noise": frontier["timing"]["noise"],
    }


def contenders_for(
    name: str, parent: Path, search: dict[str, Any], quick: bool, nncf_work: Path | None
) -> tuple[list[Contender], dict[str, Any]]:
    from scaledl.data import DataConfig
    from scaledl.export.onnx_export import export_onnx
    from scaledl.export.reexport import load_module
    from scaledl.modalities import load_splits
    from scaledl.package import open_package
    from scaledl.preprocess import apply_preprocessing

    pkg = open_package(parent)
    lineage = pkg.manifest.lineage
    splits = load_splits(DataConfig.model_validate(lineage.data), seed=lineage.split_seed)
    prep = pkg.preprocessing
    x, y = apply_preprocessing(splits.test.x, prep), splits.test.y
    module = load_module(pkg)
    onnx = pkg.onnx_path.read_bytes()
    out = [
        eager_contender("pytorch-eager-fp32", module, x, y),
        ort_contender("ort-fp32", onnx, x, y),
    ]
    calibration = apply_preprocessing(splits.train.x[:: max(1, len(splits.train) // 256)], prep)
    out.append(ort_contender("ort-int8-static", ort_static_int8(onnx, calibration), x, y))
    extra: dict[str, Any] = {"nncf": "skipped (--skip-nncf)"}
    if nncf_work is not None:
        val = (apply_preprocessing(splits.val.x, prep), splits.val.y)
        extra["nncf"] = run_nncf(name, nncf_work, pkg.onnx_path, calibration, val, (x, y))
        try:
            if "error" not in extra["nncf"]:
                out.extend(nncf_contenders(extra["nncf"], onnx, x, y))
        except Exception as exc:  # e.g. OpenVINO missing beside the bench (the `openvino` extra)
            extra["nncf"]["error"] = f"not timed: {type(exc).__name__}: {exc}"
            log(name, extra["nncf"]["error"])
    epochs = QUICK_SETTINGS["distill"]["epochs"] if quick else 5
    try:
        log(name, "Torch-Pruning 50% + fine-tune")
        pruned, notes = torch_pruning_finetune(module, splits, prep, epochs)
        graph = export_onnx(pruned, x[:16], exporter="legacy").onnx_bytes
        out.append(ort_contender("torch-pruning-50%+ft (ort-fp32)", graph, x, y, notes=notes))
    except Exception as exc:
        extra["torch_pruning"] = f"not run: {type(exc).__name__}: {exc}"
        log(name, extra["torch_pruning"])
    chosen = open_package(search["package"])
    runtime = chosen.manifest.runtime
    config = runtime.session_config if runtime is not None else {}
    out.append(ort_contender("scaledl", chosen.onnx_path.read_bytes(), x, y, config=config))
    extra["example"] = x[:1]
    return out, extra


def time_contenders(contenders: list[Contender], x1: np.ndarray, quick: bool) -> dict[str, Any]:
    import torch

    from scaledl.bench.latency import LatencyStats, interleaved_rounds

    torch.set_num_threads(THREADS)  # the same thread count for PyTorch as for ONNX Runtime

    calls = {c.name: (lambda c=c: c.run(x1)) for c in contenders}
    timed = interleaved_rounds(calls, rounds=6 if quick else 12, seconds_per_round=0.3)
    stats = {n: LatencyStats.from_rounds(parts, len(x1)) for n, parts in timed.items()}
    return {
        c.name: {
            "test_accuracy": round(c.test_accuracy, 4),
            "p25_ms": round(stats[c.name].p25_ms, 4),
            "p50_ms": round(stats[c.name].p50_ms, 4),
            "p95_ms": round(stats[c.name].p95_ms, 4),
            "p99_ms": round(stats[c.name].p99_ms, 4),
            "file_bytes": c.file_bytes,
            "notes": c.notes,
        }
        for c in contenders
    }


def ratios_and_targets(kind: str, timing: dict[str, Any], search: dict[str, Any]) -> dict[str, Any]:
    ours = timing["scaledl"]
    fp32, int8, eager = timing["ort-fp32"], timing["ort-int8-static"], timing["pytorch-eager-fp32"]
    nncf = timing.get(NNCF)  # absent when skipped or when NNCF failed (the error is recorded)
    ratios: dict[str, float | None] = {
        "p50_vs_eager": eager["p50_ms"] / ours["p50_ms"],
        "p50_vs_ort_fp32": fp32["p50_ms"] / ours["p50_ms"],
        "p50_vs_ort_int8": int8["p50_ms"] / ours["p50_ms"],
        "p50_vs_nncf": nncf["p50_ms"] / ours["p50_ms"] if nncf else None,
        # the lower quartile: the same comparison with background load filtered out
        "p25_vs_eager": eager["p25_ms"] / ours["p25_ms"],
        "p25_vs_ort_fp32": fp32["p25_ms"] / ours["p25_ms"],
        "p25_vs_ort_int8": int8["p25_ms"] / ours["p25_ms"],
        "p25_vs_nncf": nncf["p25_ms"] / ours["p25_ms"] if nncf else None,
        "file_vs_parent": fp32["file_bytes"] / ours["file_bytes"],
        "file_vs_nncf": nncf["file_bytes"] / ours["file_bytes"] if nncf else None,
        "accuracy_drop_pt": (fp32["test_accuracy"] - ours["test_accuracy"]) * 100,
        "nncf_accuracy_drop_pt": (fp32["test_accuracy"] - nncf["test_accuracy"]) * 100
        if nncf
        else None,
    }
    drop_ok = (fp32["test_accuracy"] - ours["test_accuracy"]) * 100 <= 1.0 + 1e-9
    if kind == "cnn":
        targets = {
            "≥10× lower p50 than eager fp32": eager["p50_ms"] / ours["p50_ms"] >= 10,
            "≥1.5× lower p50 than ORT int8 alone": int8["p50_ms"] / ours["p50_ms"] >= 1.5,
            "≥8× smaller file": fp32["file_bytes"] / ours["file_bytes"] >= 8,
            "≤1 pt test accuracy drop": drop_ok,
        }
    else:
        targets = {
            "≥1.5× lower p50 than ORT fp32": fp32["p50_ms"] / ours["p50_ms"] >= 1.5,
            "≤1 pt test accuracy drop": drop_ok,
        }
    targets["search within its time budget"] = bool(search["within_budget"])
    rounded = {k: None if v is None else round(v, 3) for k, v in ratios.items()}
    return {"ratios": rounded, "targets": targets}


def run_case(
    name: str,
    case: Case,
    root: Path,
    quick: bool,
    reuse: bool,
    cifar_limit: int | None,
    nncf: bool = True,
) -> dict[str, Any]:
    work = root / name
    start = time.perf_counter()
    overrides = overrides_for(case, quick, cifar_limit)
    parent = train_parent(name, work, case.recipe, overrides, reuse)
    search = run_search(name, case, parent, work, quick, reuse)
    log(name, f"chosen {search['chosen']} {search['transforms']} in {search['seconds']} s")
    contenders, extra = contenders_for(name, parent, search, quick, work if nncf else None)
    log(name, "timing all contenders side by side (batch 1, interleaved)")
    timing = time_contenders(contenders, extra.pop("example"), quick)
    summary = ratios_and_targets(case.kind, timing, search)
    log(name, f"ratios {summary['ratios']}")
    return {
        "kind": case.kind,
        "recipe": f"examples/{case.recipe}.yaml",
        "overrides": overrides,
        "parent": str(parent),
        "search": search,
        "contenders": timing,
        **summary,
        **extra,
        "seconds": round(time.perf_counter() - start, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short training/search, CIFAR subset")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated cases")
    parser.add_argument(
        "--work",
        type=Path,
        default=REPO / "runs" / "bench-optimize",
        help="folder for parents, searches and peers' models (default: runs/bench-optimize)",
    )
    parser.add_argument(
        "--cifar-limit", type=int, default=None, help="CIFAR-10 images per class (default: all)"
    )
    parser.add_argument(
        "--reuse", action="store_true", help="reuse parents and searches already in --work"
    )
    parser.add_argument(
        "--budget-min", type=float, default=None, help="every case's search budget in minutes"
    )
    parser.add_argument(
        "--skip-nncf",
        action="store_true",
        help="leave out NNCF's accuracy-aware int8 (it installs NNCF + OpenVINO in its own venv)",
    )
    parser.add_argument(
        "--results",
        default=None,
        help="results file name under bench/results, without .json (default: optimize, or "
        "optimize-quick with --quick); e.g. a run on another CPU kept beside the main one",
    )
    args = parser.parse_args()
    stem = args.results or ("optimize-quick" if args.quick else "optimize")
    if not stem.replace("-", "").replace("_", "").isalnum():
        parser.error(f"--results {stem!r}: expected letters, digits, '-' or '_'")
    names = [n.strip() for n in args.cases.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {unknown}; valid: {', '.join(CASES)}")
    from scaledl.ui import enable_progress

    enable_progress()  # the search's progress on stderr (plain lines a minute in a log file)
    for cifar in [n for n in names if n.startswith("cifar10")]:
        if not find_cifar10().is_dir():
            print(f"CIFAR-10 not found at {find_cifar10()}; skipping {cifar}", flush=True)
            names.remove(cifar)
    # a run of some cases keeps the others' results from an earlier run of the same kind
    previous = RESULTS / f"{stem}.json"
    results = json.loads(previous.read_text()).get("cases", {}) if previous.is_file() else {}
    for name in names:
        case = CASES[name]
        if args.budget_min:
            case = replace(case, budget_min=args.budget_min, quick_budget_min=args.budget_min)
        results[name] = run_case(
            name, case, args.work, args.quick, args.reuse, args.cifar_limit, not args.skip_nncf
        )
        results[name]["command"] = " ".join(["python bench/optimize.py", *sys.argv[1:]])
        # the file keeps other cases from earlier runs, maybe on another CPU: each case says its own
        results[name]["machine"] = machine()
        path = write_results(
            stem,
            {
                "command": " ".join(["python bench/optimize.py", *sys.argv[1:]]),
                "quick": args.quick,
                "threads": THREADS,
                "cases": results,
            },
        )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
