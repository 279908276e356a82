"""Training checkpoints: written atomically, read back without unpickling code.

A checkpoint records the exact position in training: completed epochs plus the optimizer steps
done in the current epoch, so a restarted job continues at the next sample. In a process group
every rank reports which checkpoint it can see; the most advanced one is read by its rank and
broadcast, so the ranks agree even when only some machines hold the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scaledl.errors import ScaledlError
from scaledl.fsio import atomic_path

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
