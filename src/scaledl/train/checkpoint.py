"""Training checkpoints: written atomically, read back without unpickling code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scaledl.errors import ScaledlError
from scaledl.fsio import atomic_path

CHECKPOINT_NAME = "last.ckpt"


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
    return state
