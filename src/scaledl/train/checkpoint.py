"""Training checkpoints: written atomically, read back without unpickling code.

A checkpoint records the exact position in training: completed epochs plus the optimizer steps
done in the current epoch, so a restarted job continues at the next sample. In a process group
every rank reports which checkpoint it can see; the most advanced one is read by its rank and
broadcast, so the ranks agree even when only some machines hold the file.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from scaledl.errors import ScaledlError
from scaledl.fsio import atomic_path

log = logging.getLogger(__name__)
CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_NAME = "last.ckpt"
FORMAT = 2


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """`state` holds only tensors, numbers, strings, lists and dicts."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad files
        raise ScaledlError(f"checkpoint {path} is unreadable or corrupt ({exc})") from None
    if not isinstance(state, dict) or "epoch" not in state:
        raise ScaledlError(f"checkpoint {path} is not a scaledl training checkpoint")
    state.setdefault("step", 0)
    return state


def mismatch_message(path: Path | None) -> str:
    return (
        f"checkpoint {path} was made by a different recipe or data set; "
        "resume with the same recipe, or start without --resume in a new --out folder"
    )


def no_checkpoint_message(path: Path | None) -> str:
    return (
        f"--resume: there is no checkpoint to resume from at {path} (training writes it there "
        "at every epoch end and every --checkpoint-every steps); give --out the folder of the "
        "run to continue, or leave out --resume to start a new run"
    )


def check_resumable(out_dir: Path) -> None:
    """Fail fast, before loading any data, when --resume has nothing to continue from."""
    from scaledl.errors import UsageError

    path = Path(out_dir) / CHECKPOINT_DIR / CHECKPOINT_NAME
    if not path.is_file():
        raise UsageError(no_checkpoint_message(path))


def load_for_resume(ctx: Any, path: Path | None, fingerprint: str) -> dict[str, Any] | None:
    """The most advanced matching checkpoint any rank can read, on every rank (or None)."""
    local: dict[str, Any] | None = None
    status = [-1, -1, 0]  # epoch, step, problem (1: other recipe, 2: unreadable)
    error = ""
    if path is not None and path.is_file():
        try:
            local = load_checkpoint(path)
        except ScaledlError as exc:
            status[2], error = 2, exc.message
        if local is not None and local.get("fingerprint") != fingerprint:
            local, status[2], error = None, 1, mismatch_message(path)
        elif local is not None:
            status = [int(local["epoch"]), int(local["step"]), 0]
    table = ctx.all_gather_ints(status)
    best = max((row[0], row[1]) for row in table)
    if best[0] < 0:
        if any(row[2] for row in table):
            raise ScaledlError(
                error or f"another rank's checkpoint {path} is unreadable or from another recipe"
            )
        return None
    src = next(r for r, row in enumerate(table) if (row[0], row[1]) == best)
    if not ctx.distributed:
        return local
    from scaledl.train.distributed import deserialize, serialize

    data = ctx.broadcast_bytes(serialize(local) if ctx.rank == src and local else None, src)
    return local if ctx.rank == src else deserialize(data)


def save_training_state(
    path: Path,
    ctx: Any,
    fingerprint: str,
    model: Any,
    optimizer: Any,
    state: dict[str, Any],
    partial: list[float] | None = None,
) -> None:
    """Rank 0 writes the checkpoint; `partial` (this rank's running epoch sums, mid-epoch) is
    summed over the ranks first, so the file holds the group's totals."""
    from scaledl.train.optim import cpu_state

    totals = ctx.sum(partial) if partial is not None else [0.0, 0.0, 0.0]
    if not ctx.is_main:
        return
    body = {k: v for k, v in state.items() if k not in ("best_state", "partial")}
    save_checkpoint(
        path,
        {
            "format": FORMAT,
            "fingerprint": fingerprint,
            "world_size": ctx.world_size,
            "model": cpu_state(model),
            "optimizer": optimizer.state_dict(),
            **body,
            "partial": totals,
            "best_state": state["best_state"],
        },
    )
    if partial is not None:
        log.debug("checkpoint at epoch %d step %d", state["epoch"] + 1, state["step"])


def restore_training_state(
    ckpt: dict[str, Any],
    model: Any,
    optimizer: Any,
    state: dict[str, Any],
    world_size: int,
    steps_per_epoch: int,
) -> dict[str, Any]:
    """Load a checkpoint into the model and optimizer; the training state to continue from.

    Positions are counted in global batches, so a checkpoint written by any number of
    processes continues on `world_size` of them (the optimizer state is the same on every rank).
    """
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    written_by = int(ckpt.get("world_size", world_size))
    log.info(
        "resumed at epoch %d, step %d of %d%s",
        ckpt["epoch"] + 1,
        ckpt["step"],
        steps_per_epoch,
        f" (written by {written_by} process(es), continuing on {world_size})"
        if written_by != world_size
        else "",
    )
    resumed = {k: ckpt.get(k, state[k]) for k in state}
    resumed["partial"] = [float(v) for v in resumed["partial"]]
    return resumed
