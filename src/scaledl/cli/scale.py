"""`scaledl train` as one process, as a launcher of N processes, or as one torchrun worker."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scaledl.cli.common import console, shown


@dataclass
class TrainArgs:
    recipe: Path
    out: Path | None = None
    set_: list[str] = field(default_factory=list)
    resume: bool = False
    nproc: int | None = None
    nnodes: str = "1"
    rdzv_endpoint: str | None = None
    rdzv_id: str = "scaledl"
    rdzv_timeout: float = 120.0
    max_restarts: int = 0
    device: str = "auto"
    precision: str = "auto"
    checkpoint_every: int = 50
    dist_timeout: float = 60.0
    sample_log: Path | None = None
    trust_code: bool = False


def train_command(args: TrainArgs) -> None:
    from scaledl.errors import UsageError
    from scaledl.recipe import load_recipe
    from scaledl.train.choices import DEVICES, PRECISIONS, launched_by_torchrun

    if args.device not in DEVICES:
        raise UsageError(f"--device {args.device!r}: valid values are {', '.join(DEVICES)}")
    if args.precision not in PRECISIONS:
        raise UsageError(f"--precision {args.precision!r}: valid: {', '.join(PRECISIONS)}")
    for flag, value in (
        ("--max-restarts", args.max_restarts),
        ("--checkpoint-every", args.checkpoint_every),
    ):
        if value < 0:
            raise UsageError(f"{flag} {value}: expected 0 or more")
    if args.dist_timeout <= 0 or args.rdzv_timeout <= 0:
        raise UsageError("--dist-timeout and --rdzv-timeout must be positive (seconds)")
    recipe = load_recipe(args.recipe, args.set_)
    out = (args.out or Path("runs") / recipe.name).resolve()
    if launched_by_torchrun():
        if args.nproc is not None:
            raise UsageError(
                "--nproc: this process was already started by torchrun (RANK is set); pass "
                "--nproc-per-node to torchrun instead"
            )
        _run_worker(args, recipe, out)
    elif args.nproc is not None or args.rdzv_endpoint is not None:
        _launch(args, recipe, out)
    else:
        _run_worker(args, recipe, out)


def _options(args: TrainArgs) -> object:
    from scaledl.pipeline.train import ScaleOptions

    return ScaleOptions(
        device=args.device,
        precision=args.precision,
        checkpoint_every=args.checkpoint_every or None,
        dist_timeout=args.dist_timeout,
        sample_log=args.sample_log.resolve() if args.sample_log else None,
        trust_code=args.trust_code,
    )


def _run_worker(args: TrainArgs, recipe: object, out: Path) -> None:
    from scaledl.pipeline.train import ScaleOptions, train_recipe
    from scaledl.ui import disable_progress

    if os.environ.get("RANK", "0") != "0":
        disable_progress()  # one progress bar per job, drawn by rank 0
    options = _options(args)
    assert isinstance(options, ScaleOptions)
    output = train_recipe(recipe, out, resume=args.resume, options=options)  # type: ignore[arg-type]
    if not output.is_main:
        return
    procs = f" on {output.world_size} processes" if output.world_size > 1 else ""
    epochs = epoch_summary(output.history, output.best_epoch)
    console.print(
        f"trained {len(output.history)} epoch(s){procs} in {output.seconds:.1f} s "
        f"({output.samples_per_second:.0f} samples/s); {epochs}"
    )
    if output.extra.get("utilisation"):
        from scaledl.train.utilisation import describe

        console.print(describe(output.extra["utilisation"]))
    console.print(f"package: {shown(output.package)}")


def epoch_summary(history: list[dict[str, Any]], best_epoch: int) -> str:
    """The training summary's epochs: "best epoch 2, val accuracy 0.8306 (last epoch: 0.8228)".
    The score is the best epoch's, whose weights the package holds; the last epoch's is added
    when it differs."""
    text = f"best epoch {best_epoch}"
    rows = {row.get("epoch"): row for row in history}
    best, last = rows.get(best_epoch, {}), history[-1] if history else {}
    if "val_accuracy" in best:
        text += f", val accuracy {best['val_accuracy']:.4f}"
        if last is not best and "val_accuracy" in last:
            text += f" (last epoch: {last['val_accuracy']:.4f})"
    return text


def _launch(args: TrainArgs, recipe: object, out: Path) -> None:
    from scaledl.errors import UsageError
    from scaledl.train.launch import LaunchSpec, check_nproc, launch, max_nodes
    from scaledl.train.sharding import check_world_size

    nproc = args.nproc or 1
    if args.resume and max_nodes(args.nnodes) == 1:
        from scaledl.train.checkpoint import check_resumable

        check_resumable(out)  # on several machines another one may hold it: the group decides
    check_nproc(nproc, args.device)
    world = nproc * max_nodes(args.nnodes)
    batch = recipe.train.batch_size  # type: ignore[attr-defined]
    problem = check_world_size(2 * world, batch, world)
    if problem:
        raise UsageError(f"--nproc {nproc} × --nnodes {args.nnodes}: {problem}")
    spec = LaunchSpec(
        nproc=nproc,
        nnodes=args.nnodes,
        rdzv_endpoint=args.rdzv_endpoint,
        rdzv_id=args.rdzv_id,
        max_restarts=args.max_restarts,
        rdzv_timeout=args.rdzv_timeout,
    )
    launch(spec, worker_args(args, out), args.device)
    manifest = out / "package" / "manifest.json"
    if manifest.is_file():  # written by rank 0, when it runs on this machine
        metrics = json.loads(manifest.read_text()).get("metrics", {})
        acc = metrics.get("accuracy")
        console.print(
            f"job done: {metrics.get('train_processes', '?')} processes"
            + (f", test accuracy {acc:.4f} (ONNX Runtime)" if isinstance(acc, float) else "")
        )


def worker_args(args: TrainArgs, out: Path) -> list[str]:
    """The `scaledl ...` arguments every worker process gets (launcher flags removed)."""
    level = logging.getLogger().level
    argv = ["-q"] if level >= logging.ERROR else ["-v"] if level <= logging.INFO else []
    argv += ["train", str(Path(args.recipe).resolve()), "--out", str(out)]
    for item in args.set_:
        argv += ["--set", item]
    argv += ["--device", args.device, "--precision", args.precision]
    argv += ["--checkpoint-every", str(args.checkpoint_every)]
    argv += ["--dist-timeout", str(args.dist_timeout)]
    if args.sample_log:
        argv += ["--sample-log", str(args.sample_log.resolve())]
    if args.resume:
        argv.append("--resume")
    if args.trust_code:
        argv.append("--trust-code")
    return argv
