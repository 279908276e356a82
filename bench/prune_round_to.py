"""ONNX Runtime batch-1 latency of 50%-pruned CNNs: kept channels rounded to 1, 8 or 16.

Side by side in one process, rounds interleaved so machine noise hits every variant alike:
the digits CNN (1×8×8, channels [32, 64], depth 2, trained a few epochs so global ranking
sees real weights), a CIFAR-sized CNN (3×32×32, channels [32, 64, 128], depth 2) and the
examples/cifar10-cnn.yaml network (residual, [32, 64, 128, 256], depth [1, 1, 3, 1]); the
CIFAR-sized ones keep random weights, which do not change latency.
Writes bench/results/prune_round_to.json.

    .venv/bin/python bench/prune_round_to.py [--quick] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scaledl.export.onnx_export import export_onnx
from scaledl.export.runtime import create_session
from scaledl.models import ModelSpec
from scaledl.optimize.prune import prune_structured
from scaledl.optimize.prune.counting import count_macs

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import write_results

VARIANTS: list[tuple[str, dict[str, Any] | None]] = [("unpruned", None)]
VARIANTS += [(f"50% global round_to={r}", {"ratio": 0.5, "round_to": r}) for r in (1, 8, 16)]
VARIANTS += [
    (
        f"{int(p * 100)}% per-layer round_to={r}",
        {"ratio": p, "round_to": r, "global_ranking": False},
    )
    for p in (0.4, 0.6)
    for r in (1, 8, 16)
]


def digits_teacher(epochs: int) -> tuple[ModelSpec, torch.nn.Module]:
    from scaledl.config.train import TrainConfig
    from scaledl.data import DataConfig
    from scaledl.modalities import load_splits
    from scaledl.preprocess import fit_preprocessing
    from scaledl.train.loop import Trainer

    splits = load_splits(DataConfig(source="digits"), seed=0)
    pre = fit_preprocessing(splits)
    spec = ModelSpec("cnn", [1, 8, 8], 10, {"channels": [32, 64], "depth": 2})
    torch.manual_seed(0)
    config = TrainConfig(epochs=epochs, batch_size=32, lr=0.005)
    return spec, Trainer(spec.build(), splits, config, pre).fit().model


def untrained(knobs: dict[str, Any]) -> tuple[ModelSpec, torch.nn.Module]:
    spec = ModelSpec("cnn", [3, 32, 32], 10, knobs)
    torch.manual_seed(0)
    return spec, spec.build().eval()


def variants(spec: ModelSpec, model: torch.nn.Module) -> list[dict[str, Any]]:
    out = []
    for name, kwargs in VARIANTS:
        if kwargs is None:
            pruned, widths = model, spec.knobs.get("channels")
            macs = count_macs(model, spec.input_shape)
        else:
            result = prune_structured(model, spec, **kwargs)
            pruned, widths, macs = result.model, result.spec.knobs["widths"], result.macs_after
        x = np.random.default_rng(0).normal(size=(2, *spec.input_shape)).astype(np.float32)
        onnx_bytes = export_onnx(pruned, x).onnx_bytes
        out.append({"variant": name, "widths": widths, "macs": macs, "onnx": onnx_bytes})
    return out


def measure(
    entries: list[dict[str, Any]], shape: list[int], threads: int, rounds: int, n: int
) -> None:
    sessions = [create_session(e["onnx"], threads=threads) for e in entries]
    x = np.random.default_rng(1).normal(size=(1, *shape)).astype(np.float32)
    times: list[list[float]] = [[] for _ in entries]
    for s in sessions:  # warm-up
        for _ in range(50):
            s.run(None, {"input": x})
    # Round-robin, one run per variant in turn (rotated), so load spikes hit all alike.
    for it in range(rounds * n):
        for k in range(len(sessions)):
            i = (k + it) % len(sessions)
            t0 = time.perf_counter()
            sessions[i].run(None, {"input": x})
            times[i].append((time.perf_counter() - t0) * 1e3)
    base = statistics.median(times[0])
    for entry, samples in zip(entries, times, strict=True):
        entry.pop("onnx")
        entry["p50_ms"] = round(statistics.median(samples), 4)
        entry["p90_ms"] = round(float(np.percentile(samples, 90)), 4)
        entry["speedup_vs_unpruned"] = round(base / entry["p50_ms"], 3)
        if entry["macs"]:
            entry["gmacs_per_s"] = round(entry["macs"] / entry["p50_ms"] / 1e6, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and timing rounds")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rounds, n = (5, 100) if args.quick else (20, 200)
    report: dict[str, Any] = {"threads": args.threads, "rounds": rounds, "runs_per_round": n}
    for label, (spec, model) in {
        "digits_cnn": digits_teacher(2 if args.quick else 8),
        "cifar_sized_cnn": untrained({"channels": [32, 64, 128], "depth": 2}),
        "cifar10_recipe_cnn": untrained(
            {
                "channels": [32, 64, 128, 256],
                "depth": [1, 1, 3, 1],
                "residual": True,
                "global_pool": "max",
            }
        ),
    }.items():
        entries = variants(spec, model)
        measure(entries, spec.input_shape, args.threads, rounds, n)
        report[label] = entries
        for e in entries:
            print(
                f"{label:16} {e['variant']:28} p50 {e['p50_ms']:.4f} ms "
                f"x{e['speedup_vs_unpruned']:.2f} {e['macs'] / 1e6:6.2f} MMAC widths {e['widths']}"
            )
    write_results("prune_round_to", report)


if __name__ == "__main__":
    main()
