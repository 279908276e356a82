"""MixUp and CutMix: blend each sample with a partner and mix their labels (soft targets).

The partner is drawn per sample from the whole training split (by the counter-based generator)
and goes through the same per-sample ops with its own draws, so a mixed sample is the same
whatever batch, worker or rank produced it. Lambda ~ Beta(alpha, alpha) by inverse CDF.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from scaledl.data.augment.base import AugmentOp, OpRng, per_sample, register


def beta_draw(u: np.ndarray, alpha: float) -> np.ndarray:
    from scipy.special import betaincinv

    return np.asarray(betaincinv(alpha, alpha, u), dtype=np.float64)


class MixingOp(AugmentOp):
    """A label-mixing op; runs after every per-sample op (the pipeline supplies partners)."""

    alpha: float = Field(1.0, gt=0.0, le=10.0, description="Beta(alpha, alpha) mixing weight")
    mixing: ClassVar[bool] = True
    kinds: ClassVar[tuple[str, ...]] = ("image",)

    def mix(self, x: Any, soft: Any, px: Any, psoft: Any, rng: OpRng) -> tuple[Any, Any]:
        raise NotImplementedError


@register
class MixUp(MixingOp):
    """x = λ·x + (1 − λ)·partner; targets mixed with the same λ."""

    op: Literal["mixup"] = "mixup"
    kinds: ClassVar[tuple[str, ...]] = ("image", "table", "sequence", "audio")

    def mix(self, x: Any, soft: Any, px: Any, psoft: Any, rng: OpRng) -> tuple[Any, Any]:
        import torch

        lam = torch.from_numpy(beta_draw(rng.uniform64(1, sub=1)[:, 0], self.alpha)).to(x)
        mixed = x * per_sample(lam, x) + px * per_sample(1 - lam, px)
        return mixed, soft * lam[:, None] + psoft * (1 - lam[:, None])


@register
class CutMix(MixingOp):
    """Paste a random box of the partner; targets mixed by the box's area share."""

    op: Literal["cutmix"] = "cutmix"

    def mix(self, x: Any, soft: Any, px: Any, psoft: Any, rng: OpRng) -> tuple[Any, Any]:
        import torch

        h, w = x.shape[-2:]
        u = rng.uniform64(3, sub=1)
        cut = np.sqrt(1.0 - beta_draw(u[:, 0], self.alpha))
        ch, cw = np.floor(h * cut), np.floor(w * cut)
        cy, cx = np.floor(u[:, 1] * h), np.floor(u[:, 2] * w)
        top, bottom = np.clip(cy - ch // 2, 0, h), np.clip(cy + ch // 2, 0, h)
        left, right = np.clip(cx - cw // 2, 0, w), np.clip(cx + cw // 2, 0, w)
        lam = 1.0 - (bottom - top) * (right - left) / (h * w)

        def col(v: np.ndarray) -> Any:
            return torch.from_numpy(v.astype(np.float32)).to(x.device)[:, None]

        rows = torch.arange(h, device=x.device, dtype=torch.float32)[None, :]
        cols = torch.arange(w, device=x.device, dtype=torch.float32)[None, :]
        in_rows = (rows >= col(top)) & (rows < col(bottom))
        in_cols = (cols >= col(left)) & (cols < col(right))
        box = (in_rows[:, :, None] & in_cols[:, None, :])[:, None]
        lam_t = torch.from_numpy(lam).to(soft)[:, None]
        return torch.where(box, px, x), soft * lam_t + psoft * (1 - lam_t)
