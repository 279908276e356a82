"""The augmentation op contract: a typed config that transforms a batch, one sample at a time.

An op is a pydantic model (its parameters, validated with ranges) registered under a name; the
recipe lists ops as `{op: name, ...params}`. `apply` draws each sample's own parameters from the
counter-based generator and transforms only the samples whose draw passed `p`, so the result
for a sample never depends on the rest of its batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from scaledl.data.augment.rng import sample_normal, sample_uniform

OPS: dict[str, type[AugmentOp]] = {}


def register(cls: type[AugmentOp]) -> type[AugmentOp]:
    """Class decorator: make an op available to recipes under its `op` literal."""
    name = cls.model_fields["op"].default
    OPS[name] = cls
    return cls


@dataclass
class Statistics:
    """Per-feature mean/std of the training split in [0, 1] scale (tables and sequences)."""

    mean: Any  # tensor (F,)
    std: Any  # tensor (F,)


@dataclass
class OpRng:
    """Draws for one op: a pure function of (seed, epoch, sample index, stream)."""

    seed: int
    epoch: int
    index: np.ndarray
    stream: int
    device: Any = None

    def uniform(self, count: int, sub: int = 0) -> Any:
        import torch

        u = sample_uniform(self.seed, self.epoch, self.index, self.stream * 64 + sub, count)
        return torch.from_numpy(u.astype(np.float32)).to(self.device)

    def uniform64(self, count: int, sub: int = 0) -> np.ndarray:
        return sample_uniform(self.seed, self.epoch, self.index, self.stream * 64 + sub, count)

    def normal(self, count: int, sub: int = 0) -> Any:
        import torch

        z = sample_normal(self.seed, self.epoch, self.index, self.stream * 64 + sub, count)
        return torch.from_numpy(z.astype(np.float32)).to(self.device)

    def subset(self, rows: np.ndarray) -> OpRng:
        return OpRng(self.seed, self.epoch, self.index[rows], self.stream, self.device)


class AugmentOp(BaseModel):
    """Base of every op: `p` is the probability that a sample is transformed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    op: str
    p: float = Field(1.0, ge=0.0, le=1.0, description="probability a sample is transformed")

    kinds: ClassVar[tuple[str, ...]] = ("image",)
    draws: ClassVar[int] = 0  # uniform draws per sample handed to `transform`
    mixing: ClassVar[bool] = False
    needs_stats: ClassVar[bool] = False
    # "input": on the raw batch before the graph; "features": inside the model's front-end
    stage: ClassVar[str] = "input"

    def apply(self, x: Any, rng: OpRng, stats: Statistics | None = None) -> Any:
        import torch

        u = rng.uniform(1 + self.draws)
        chosen = (u[:, 0] < self.p).cpu().numpy()
        if chosen.all():
            return self.transform(x, u[:, 1:], rng, stats)
        rows = np.flatnonzero(chosen)
        if len(rows) == 0:
            return x
        sel = torch.from_numpy(rows).to(x.device)
        done = self.transform(x.index_select(0, sel), u[sel, 1:], rng.subset(rows), stats)
        return x.index_copy(0, sel, done)

    def transform(self, x: Any, u: Any, rng: OpRng, stats: Statistics | None) -> Any:
        """Transform every sample of `x`; `u` holds `draws` uniforms per sample."""
        raise NotImplementedError


def per_sample(v: Any, x: Any) -> Any:
    """Reshape a (B,) tensor to broadcast against a (B, ...) batch."""
    return v.reshape(-1, *([1] * (x.dim() - 1)))


def lerp_range(u: Any, low: float, high: float) -> Any:
    return low + (high - low) * u
