"""Forecasting benchmark on ETTh1: every family beside the naive baselines, on the same windows.

    python bench/forecast.py                          # horizons 96 and 336, every recipe
    python bench/forecast.py --horizons 96 --models linear,dlinear --quick

Each `examples/etth1-*.yaml` recipe is trained by `train_recipe` (the real pipeline: chronological
12/4/4-month split, training-period scaling inside the graph, ONNX export with parity) and scored
by the package's ONNX graph in ONNX Runtime on **every** test window (2,785 at horizon 96). The
persistence and seasonal-naive forecasts are computed on exactly those windows. Published test
loaders often drop the last incomplete batch of 128 windows; that figure is reported too
(`test_mse_drop_last`), for comparison with the literature only.

Writes bench/results/forecast.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, write_results

ETTH1 = REPO.parent / "shared" / "datasets" / "etth1" / "ETTh1.csv"
MODELS = ["linear", "dlinear", "transformer", "cnn", "rnn"]
TARGETS = {96: 0.370, 336: 0.422}  # PatchTST/64's published test MSE (look-back 512)
PUBLISHED = {
    96: {"PatchTST/64": 0.370, "DLinear": 0.375, "Informer": 0.865},
    336: {"PatchTST/64": 0.422, "DLinear": 0.439},
}
TRAIN_LIMIT_S = 600  # each model: ≤ 10 minutes of training on 2 cores
DROP_LAST_BATCH = 128


def run_model(
    name: str, horizon: int, out: Path, quick: bool, threads: int, seed: int | None = None
) -> dict[str, Any]:
    from scaledl.pipeline.train import train_recipe
    from scaledl.recipe import load_recipe

    overrides = [
        f"data.source={ETTH1}",
        f"data.series.horizon={horizon}",
        f"train.threads={threads}",
        "export.exporter=legacy" if quick else "export.exporter=auto",
    ]
    if quick:
        overrides += ["train.epochs=1"]
    if seed is not None:  # another seed of the same recipe (the spread of its result)
        overrides += [f"seed={seed}"]
    recipe = load_recipe(REPO / "examples" / f"etth1-{name}.yaml", overrides)
    start = time.perf_counter()
    folder = f"{name}-{horizon}" if seed is None else f"{name}-{horizon}-seed{seed}"
    trained = train_recipe(recipe, out / folder)
    total = time.perf_counter() - start
    manifest = json.loads((trained.package / "manifest.json").read_text())
    metrics = manifest["metrics"]
    series = recipe.data.series
    assert series is not None
    return {
        "model": name,
        "family": recipe.model.family,
        "knobs": recipe.model.knobs(),
        "lookback": series.lookback,
        "horizon": horizon,
        "test_windows": metrics["test_samples"],
        "test_mse": round(metrics["mse_standardized"], 4),
        "test_mae": round(metrics["mae_standardized"], 4),
        "test_mse_units": round(metrics["mse"], 4),
        "test_mae_units": round(metrics["mae"], 4),
        "test_mse_drop_last": round(drop_last_mse(trained.package), 4),
        "val_mse": round(metrics["val_loss"], 4),
        "train_seconds": round(trained.seconds, 1),
        "total_seconds": round(total, 1),
        "within_train_limit": trained.seconds <= TRAIN_LIMIT_S,
        "epochs_run": len(trained.history),
        "best_epoch": trained.best_epoch,
        "parameters": parameters(trained.package),
        "parity_max_error": manifest["parity"]["max_abs_error"],
        "baselines": metrics["baselines"],
        "package": str(trained.package),
    }


def drop_last_mse(package: Path) -> float:
    """Test MSE over the windows a test loader with drop_last=True (batch 128) would keep."""
    from scaledl.data import DataConfig
    from scaledl.evaluate import predict_raw
    from scaledl.modalities import load_splits
    from scaledl.package import open_package

    pkg = open_package(package)
    config = DataConfig.model_validate(pkg.manifest.lineage.data)
    test = load_splits(config, task="regression").test
    keep = len(test) // DROP_LAST_BATCH * DROP_LAST_BATCH
    out = predict_raw(pkg, test.x[:keep])
    scale = np.asarray(pkg.preprocessing.target_std)  # type: ignore[attr-defined]
    return float((((out - np.asarray(test.y[:keep])) / scale) ** 2).mean())


def parameters(package: Path) -> int:
    from safetensors.numpy import load_file

    return int(sum(v.size for v in load_file(str(package / "weights.safetensors")).values()))


def summarize(rows: list[dict[str, Any]], horizons: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for h in horizons:
        mine = [r for r in rows if r["horizon"] == h]
        if not mine:
            continue
        best = min(mine, key=lambda r: r["test_mse"])
        baselines = mine[0]["baselines"]
        out[str(h)] = {
            "best_model": best["model"],
            "best_test_mse": best["test_mse"],
            "target_test_mse": TARGETS.get(h),
            "target_met": TARGETS.get(h) is not None and best["test_mse"] <= TARGETS[h],
            "persistence_mse": baselines["persistence"]["mse_standardized"],
            "seasonal_naive_mse": baselines["seasonal_naive"]["mse_standardized"],
            "dlinear_mse": next((r["test_mse"] for r in mine if r["model"] == "dlinear"), None),
            "published": PUBLISHED.get(h),
        }
    return out


def merged(name: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """This run's rows plus the earlier results' other (model, horizon) rows."""
    from common import RESULTS

    path = RESULTS / f"{name}.json"
    done = {(r["model"], r["horizon"]) for r in rows}
    old = json.loads(path.read_text()).get("runs", []) if path.is_file() else []
    kept = [r for r in old if (r["model"], r["horizon"]) not in done]
    order = {m: i for i, m in enumerate(MODELS)}
    return sorted(kept + rows, key=lambda r: (r["horizon"], order.get(r["model"], 99)))


def earlier_sections(name: str) -> dict[str, Any]:
    """The sections other benchmarks keep in the same file (drift, optimize)."""
    from common import RESULTS

    path = RESULTS / f"{name}.json"
    doc = json.loads(path.read_text()) if path.is_file() else {}
    return {k: v for k, v in doc.items() if k in ("drift", "optimize")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--horizons", default="96,336", help="comma-separated horizons")
    parser.add_argument("--models", default=",".join(MODELS), help="recipes etth1-<name>.yaml")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for training")
    parser.add_argument("--quick", action="store_true", help="one epoch each (development)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-forecast"))
    args = parser.parse_args()
    horizons = [int(h) for h in args.horizons.split(",")]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    load_before = os.getloadavg()
    rows = []
    for h in horizons:
        for name in models:
            print(f"== {name}, horizon {h}", flush=True)
            rows.append(run_model(name, h, args.out, args.quick, args.threads))
            print(json.dumps({k: rows[-1][k] for k in ("test_mse", "train_seconds")}), flush=True)
    name = "forecast-quick" if args.quick else "forecast"
    rows = merged(name, rows)
    horizons = sorted({r["horizon"] for r in rows})
    path = write_results(
        name,
        {
            **earlier_sections(name),
            "command": "python " + " ".join(sys.argv),
            "data": str(ETTH1),
            "protocol": "ETTh1 multivariate; train/val/test = 12/4/4 months of 30 days "
            "(rows 0–8,640 / –11,520 / –14,400); standardised with training statistics; MSE "
            "and MAE on the standardised scale over every test window",
            "machine_load": {
                "loadavg_before": [round(v, 2) for v in load_before],
                "loadavg_after": [round(v, 2) for v in os.getloadavg()],
            },
            "summary": summarize(rows, horizons),
            "runs": rows,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
