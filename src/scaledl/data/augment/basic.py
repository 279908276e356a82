"""Basic image augmentation: random crop with padding and horizontal flip."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from scaledl.data.augment.rng import sample_uniform


class AugmentConfig(BaseModel):
    """The recipe's `augment` section (applied to training batches only)."""

    model_config = ConfigDict(extra="forbid")

    crop_padding: int = Field(
        0, ge=0, le=64, description="random crop after zero-padding by N pixels"
    )
    hflip: bool = Field(False, description="flip images left-right with probability 0.5")


class Augmenter(Protocol):
    def __call__(
        self, x: Any, y: Any, *, seed: int, epoch: int, index: np.ndarray
    ) -> tuple[Any, Any | None]:
        """Augment a batch (x in [0, 1] scale); return (x, soft targets or None)."""
        ...


class BasicImageAugmenter:
    def __init__(self, config: AugmentConfig) -> None:
        self.config = config

    def __call__(
        self, x: Any, y: Any, *, seed: int, epoch: int, index: np.ndarray
    ) -> tuple[Any, Any | None]:
        import torch

        if self.config.crop_padding:
            x = _random_crop(x, self.config.crop_padding, sample_uniform(seed, epoch, index, 1, 2))
        if self.config.hflip:
            flip = torch.from_numpy(sample_uniform(seed, epoch, index, 2, 1)[:, 0] < 0.5)
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        return x, None


def _random_crop(x: Any, pad: int, u: np.ndarray) -> Any:
    import torch
    import torch.nn.functional as F

    b, _, h, w = x.shape
    offsets = torch.from_numpy(np.floor(u * (2 * pad + 1)).astype(np.int64))
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = offsets[:, 0, None] + torch.arange(h)[None, :]
    cols = offsets[:, 1, None] + torch.arange(w)[None, :]
    batch = torch.arange(b)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()


def build_augmenter(config: AugmentConfig, kind: str) -> Augmenter | None:
    """An augmenter for the data kind, or None when the config asks for nothing."""
    if kind != "image" or not (config.crop_padding or config.hflip):
        return None
    return BasicImageAugmenter(config)
