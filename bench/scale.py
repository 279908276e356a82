"""Scale benchmark: augmentation gain, batched augmentation speed, 1 vs 2 processes, recovery.

    python bench/scale.py              # CIFAR-10, 500 images per class: 20 epochs per policy
    python bench/scale.py --quick      # 300 images per class, 3 epochs (for development)
    python bench/scale.py --parts throughput recovery --process-epochs 2

Writes bench/results/scale.json after every part (a part measured later keeps the others).
  accuracy   : CIFAR-10 CNN test accuracy (ONNX Runtime) with no augmentation, the default
               policy (crop + flip) and RandAugment + CutMix, same epochs and seed
  throughput : images/s of one batched policy call vs a loop over single images, same
               transforms and draws (outputs are checked equal), on 32×32 and 224×224
  processes  : `scaledl train --nproc 1` vs `--nproc 2` (gloo): seconds per epoch, accuracy
  recovery   : a worker SIGKILLed mid-epoch under --max-restarts 1: seconds until training
               resumed, steps redone, and whether the run ends where the undisturbed one does
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CIFAR10, REPO, RESULTS, write_results

# the data set may sit beside the checkout or one folder further up
CIFAR10 = next(
    (p for p in (CIFAR10, REPO.parents[1] / "shared" / "datasets" / "cifar10") if p.is_dir()),
    CIFAR10,
)

PARTS = ("accuracy", "throughput", "processes", "recovery")
DEFAULT_POLICY = [{"op": "crop", "padding": 4}, {"op": "hflip"}]
POLICIES = {
    "none": [],
    "default": DEFAULT_POLICY,
    "randaugment+cutmix": [
        *DEFAULT_POLICY,
        {"op": "randaugment", "n": 2, "magnitude": 9},
        {"op": "cutmix", "alpha": 1.0, "p": 0.5},
    ],
}
THROUGHPUT_POLICY = [
    {"op": "resized_crop", "scale": [0.35, 1.0]},
    {"op": "hflip"},
    {"op": "color_jitter", "brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1},
    {"op": "randaugment", "n": 2, "magnitude": 9},
    {"op": "erasing", "p": 0.25},
]


def cifar_recipe(
    name: str, policy: list[dict[str, Any]], args: argparse.Namespace, epochs: int
) -> dict:
    """A small CNN on a CIFAR-10 subset: the same recipe for every policy."""
    return {
        "name": name,
        "seed": 0,
        "data": {
            "source": str(CIFAR10),
            "val_fraction": 0.05,
            "limit_per_class": args.limit_per_class,
        },
        "augment": {"policy": policy},
        "model": {"family": "cnn", "channels": [32, 64, 128], "depth": 1},
        "train": {
            "epochs": epochs,
            "batch_size": 128,
            "optimizer": "sgd",
            "lr": 0.1,
            "momentum": 0.9,
            "weight_decay": 0.0005,
            "schedule": "onecycle",
            "eval_batch_size": 1000,
        },
        "export": {"exporter": "legacy"},
    }


def part_accuracy(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    from scaledl.pipeline.train import train_recipe
    from scaledl.recipe import validate_recipe

    rows = {}
    for name, policy in POLICIES.items():
        recipe = validate_recipe(
            cifar_recipe(f"cifar-{name.replace('+', '-')}", policy, args, args.epochs)
        )
        trained = train_recipe(recipe, out / recipe.name)
        metrics = json.loads((trained.package / "manifest.json").read_text())["metrics"]
        rows[name] = {
            "test_accuracy": round(metrics["accuracy"], 4),
            "best_val_accuracy": round(metrics["val_accuracy"], 4),
            "train_seconds": round(trained.seconds, 1),
            "images_per_second": round(trained.samples_per_second, 1),
            "policy": recipe.augment.describe(),
        }
        print(json.dumps({name: rows[name]["test_accuracy"]}), flush=True)
    base = rows["none"]["test_accuracy"]
    for row in rows.values():
        row["gain_points"] = round(100 * (row["test_accuracy"] - base), 2)
    return {"epochs": args.epochs, "limit_per_class": args.limit_per_class, "rows": rows}


def part_throughput(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import torch

    from scaledl.data.augment import AugmentConfig, build_augmenter

    augmenter = build_augmenter(AugmentConfig(policy=THROUGHPUT_POLICY), "image")
    assert augmenter is not None
    rows = []
    for size, batch in ((32, 256), (224, 32)):
        rng = np.random.default_rng(0)
        x = torch.from_numpy(rng.integers(0, 256, (batch, 3, size, size)).astype(np.float32) / 255)
        y = torch.zeros(batch, dtype=torch.long)
        index = np.arange(batch)

        def batched(x: Any = x, y: Any = y, index: Any = index) -> Any:
            return augmenter(x, y, seed=0, epoch=0, index=index)[0]

        def looped(x: Any = x, y: Any = y, index: Any = index) -> Any:
            one = [
                augmenter(x[i : i + 1], y[i : i + 1], seed=0, epoch=0, index=index[i : i + 1])[0]
                for i in range(len(index))
            ]
            return torch.cat(one)

        same = bool(torch.equal(batched(), looped()))
        t_batch, t_loop = _interleaved_medians(batched, looped, args.repeats)
        rows.append({
            "image_size": size,
            "batch": batch,
            "batched_images_per_second": round(batch / t_batch, 1),
            "per_image_images_per_second": round(batch / t_loop, 1),
            "speedup": round(t_loop / t_batch, 2),
            "outputs_identical": same,
        })  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    return {
        "policy": AugmentConfig(policy=THROUGHPUT_POLICY).describe(),
        "torch_threads": torch.get_num_threads(),
        "rows": rows,
    }


def _interleaved_medians(first: Any, second: Any, repeats: int) -> tuple[float, float]:
    """Median seconds of two functions timed turn about, so load spikes hit both alike."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, out in ((first, times[0]), (second, times[1])):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def _write_recipe(args: argparse.Namespace, out: Path) -> Path:
    path = out / "cifar-default.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        yaml.safe_dump(cifar_recipe("cifar-default", DEFAULT_POLICY, args, args.process_epochs))
    )
    return path


def _scaledl(*argv: str) -> list[str]:
    return [sys.executable, "-m", "scaledl", "-q", "train", *argv]


def _run_summary(run: Path, wall: float) -> dict[str, Any]:
    package = run / "package"
    metrics = json.loads((package / "manifest.json").read_text())["metrics"]
    history = json.loads((package / "history.json").read_text())
    return {
        "processes": metrics["train_processes"],
        "test_accuracy": round(metrics["accuracy"], 4),
        "seconds_per_epoch": round(statistics.median(h["seconds"] for h in history), 2),
        "wall_seconds": round(wall, 1),
        "weights_sha256": json.loads((package / "manifest.json").read_text())["files"][
            "weights.safetensors"
        ],
    }


def part_processes(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    recipe = _write_recipe(args, out)
    rows = []
    for nproc in (1, 2):
        run = out / f"nproc{nproc}"
        shutil.rmtree(run, ignore_errors=True)
        start = time.perf_counter()
        subprocess.run(
            _scaledl(str(recipe), "--out", str(run), "--nproc", str(nproc),
                     "--checkpoint-every", "10"),
            check=True,
        )  # fmt: skip
        rows.append(_run_summary(run, time.perf_counter() - start))
        print(json.dumps(rows[-1]), flush=True)
    return {
        "epochs": args.process_epochs,
        "limit_per_class": args.limit_per_class,
        "rows": rows,
        "speedup_per_epoch": round(rows[0]["seconds_per_epoch"] / rows[1]["seconds_per_epoch"], 2),
        "accuracy_difference_points": round(
            100 * (rows[1]["test_accuracy"] - rows[0]["test_accuracy"]), 2
        ),
    }


def part_recovery(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    from scaledl.train.samplelog import read_sample_log

    recipe, run, log = _write_recipe(args, out), out / "recovery", out / "recovery-log"
    every = 10
    for old in (run, log):  # a previous run's log would name dead processes
        shutil.rmtree(old, ignore_errors=True)
    start = time.time()
    proc = subprocess.Popen(
        _scaledl(str(recipe), "--out", str(run), "--nproc", "2", "--max-restarts", "1",
                 "--checkpoint-every", str(every), "--sample-log", str(log))
    )  # fmt: skip
    try:
        victim, killed = _kill_rank1_mid_epoch(proc, log, every)
        if proc.wait() != 0:
            raise SystemExit("recovery: the restarted run failed")
    finally:
        if proc.poll() is None:  # on SIGTERM torch's agent stops its workers, then exits
            proc.terminate()
            proc.wait(timeout=120)
    records = read_sample_log(log)
    first = min((r for r in records if r["attempt"] == 0), key=lambda r: r["time"])
    resumed = min((r for r in records if r["attempt"] == 1), key=lambda r: r["time"])
    summary = _run_summary(run, time.time() - start)
    reference = RESULTS / "scale.json"
    undisturbed = None
    if reference.is_file():
        rows = json.loads(reference.read_text()).get("processes", {}).get("rows", [])
        undisturbed = next((r for r in rows if r["processes"] == 2), None)
    same = None
    if undisturbed is not None and _same_setup(reference, args):
        same = undisturbed["weights_sha256"] == summary["weights_sha256"]
    return {
        "killed_at": {"epoch": victim["epoch"], "step": victim["step"]},
        "resumed_at": {"epoch": resumed["epoch"], "step": resumed["step"]},
        "checkpoint_every_steps": every,
        "recovery_seconds": round(resumed["time"] - killed, 2),
        "cold_start_seconds": round(first["time"] - start, 2),
        "steps_redone": victim["step"] + 1 - resumed["step"],
        "test_accuracy": summary["test_accuracy"],
        "identical_to_undisturbed_run": same,
    }


def _kill_rank1_mid_epoch(
    proc: subprocess.Popen[bytes], log: Path, every: int
) -> tuple[dict[str, Any], float]:
    from scaledl.train.samplelog import read_sample_log

    while proc.poll() is None:
        rank1 = [r for r in read_sample_log(log) if r["rank"] == 1]
        if rank1 and (rank1[-1]["epoch"], rank1[-1]["step"]) >= (0, every + every // 2):
            os.kill(rank1[-1]["pid"], signal.SIGKILL)
            return rank1[-1], time.time()
        time.sleep(0.01)
    raise SystemExit("recovery: training ended before the worker could be killed")


def _same_setup(reference: Path, args: argparse.Namespace) -> bool:
    previous = json.loads(reference.read_text()).get("processes", {})
    return previous.get("epochs") == args.process_epochs and (
        previous.get("limit_per_class") == args.limit_per_class
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="300 images/class, 3 epochs")
    parser.add_argument(
        "--process-epochs", type=int, help="epochs of the processes/recovery runs (default 3)"
    )
    parser.add_argument("--parts", nargs="*", choices=PARTS, default=list(PARTS))
    parser.add_argument("--epochs", type=int, help="epochs per policy run (default 20; --quick 3)")
    parser.add_argument("--limit-per-class", type=int, help="CIFAR-10 images per class")
    parser.add_argument("--repeats", type=int, default=5, help="timing repeats (median)")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench-scale")
    args = parser.parse_args()
    args.epochs = args.epochs or (3 if args.quick else 20)
    args.limit_per_class = args.limit_per_class or (300 if args.quick else 500)
    args.process_epochs = args.process_epochs or (2 if args.quick else 3)
    os.environ.setdefault("TMPDIR", str(args.out / "tmp"))
    (args.out / "tmp").mkdir(parents=True, exist_ok=True)
    path = RESULTS / "scale.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    results.pop("machine", None)
    command = "python bench/scale.py " + " ".join(sys.argv[1:])
    for part in args.parts:
        if part != "throughput" and not CIFAR10.is_dir():
            print(f"skipping {part}: {CIFAR10} not found")
            continue
        print(f"--- {part}", flush=True)
        start = time.perf_counter()
        if part == "accuracy":
            data = part_accuracy(args, args.out)
        elif part == "throughput":
            data = part_throughput(args)
        elif part == "processes":
            data = part_processes(args, args.out)
        else:
            data = part_recovery(args, args.out)
        data.update(
            quick=args.quick, command=command.strip(), seconds=round(time.perf_counter() - start, 1)
        )
        results[part] = data
        path = write_results("scale", results)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
