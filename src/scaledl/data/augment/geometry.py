"""Geometric image ops: crop with padding, random resized crop, flips, affine.

Warps go through one batched `grid_sample` with a per-sample matrix. Matrices are inverted in
closed form (elementwise), so a sample's output is bit-identical whatever batch it is in.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, model_validator

from scaledl.data.augment.base import AugmentOp, OpRng, Statistics, lerp_range, register


def affine_forward(
    angle_deg: Any, tx: Any, ty: Any, scale: Any, shear_x_deg: Any, shear_y_deg: Any
) -> Any:
    """(B, 2, 3) forward maps in pixel coordinates centred on the image: T · R · Sh · S."""
    import torch

    a = torch.deg2rad(angle_deg)
    sx, sy = torch.tan(torch.deg2rad(shear_x_deg)), torch.tan(torch.deg2rad(shear_y_deg))
    cos, sin = torch.cos(a), torch.sin(a)
    # R · Sh, with Sh = [[1, sx], [sy, 1]], then scaled
    m00 = (cos - sin * sy) * scale
    m01 = (cos * sx - sin) * scale
    m10 = (sin + cos * sy) * scale
    m11 = (sin * sx + cos) * scale
    return torch.stack(
        [torch.stack([m00, m01, tx], dim=1), torch.stack([m10, m11, ty], dim=1)], dim=1
    )


def invert_affine(m: Any) -> Any:
    """Closed-form inverse of (B, 2, 3) affine maps."""
    import torch

    a, b, c = m[:, 0, 0], m[:, 0, 1], m[:, 0, 2]
    d, e, f = m[:, 1, 0], m[:, 1, 1], m[:, 1, 2]
    det = a * e - b * d
    ia, ib, id_, ie = e / det, -b / det, -d / det, a / det
    ic = -(ia * c + ib * f)
    if_ = -(id_ * c + ie * f)
    return torch.stack(
        [torch.stack([ia, ib, ic], dim=1), torch.stack([id_, ie, if_], dim=1)], dim=1
    )


def affine_grid(theta: Any, h: int, w: int) -> Any:
    """`F.affine_grid` (align_corners=False) computed elementwise, per sample.

    torch's version multiplies a (H·W, 3) base grid by each matrix with bmm, which is slow on
    CPUs for large images; broadcasting two planes is cheaper and exact.
    """
    import torch

    xs = (torch.arange(w, device=theta.device, dtype=theta.dtype) * 2 + 1) / w - 1
    ys = (torch.arange(h, device=theta.device, dtype=theta.dtype) * 2 + 1) / h - 1
    t = theta[:, :, :, None, None]  # (B, 2, 3, 1, 1)
    grid_x = t[:, 0, 0] * xs[None, None, :] + t[:, 0, 1] * ys[None, :, None] + t[:, 0, 2]
    grid_y = t[:, 1, 0] * xs[None, None, :] + t[:, 1, 1] * ys[None, :, None] + t[:, 1, 2]
    return torch.stack([grid_x, grid_y], dim=-1)


def warp(x: Any, forward: Any, mode: str = "bilinear") -> Any:
    """Apply forward pixel maps (B, 2, 3) to images; uncovered pixels become 0."""
    import torch
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    inv = invert_affine(forward)
    # pixel (centred) → normalized coordinates: x_n = 2 x / W, y_n = 2 y / H
    theta = inv.clone()
    theta[:, 0, 1] = inv[:, 0, 1] * (h / w)
    theta[:, 1, 0] = inv[:, 1, 0] * (w / h)
    theta[:, 0, 2] = inv[:, 0, 2] * (2.0 / w)
    theta[:, 1, 2] = inv[:, 1, 2] * (2.0 / h)
    grid = affine_grid(theta.to(x.dtype), h, w)
    return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False).to(
        dtype=x.dtype, memory_format=torch.contiguous_format
    )


@register
class Crop(AugmentOp):
    """Zero-pad by `padding` pixels, then cut a random window of the original size."""

    op: Literal["crop"] = "crop"
    padding: int = Field(4, ge=1, le=64, description="pixels of zero padding on each side")
    draws = 2

    def transform(self, x: Any, u: Any, rng: OpRng, stats: Statistics | None) -> Any:
        import torch
        import torch.nn.functional as F

        b, c, h, w = x.shape
        pad = self.padding
        offsets = torch.floor(u * (2 * pad + 1)).long().clamp(max=2 * pad)
        padded = F.pad(x, (pad, pad, pad, pad)).reshape(b, c, -1)
        rows = offsets[:, 0, None] + torch.arange(h, device=x.device)[None, :]
        cols = offsets[:, 1, None] + torch.arange(w, device=x.device)[None, :]
        # one gather over the flattened padded images (4× faster than fancy indexing)
        flat = rows[:, :, None] * (w + 2 * pad) + cols[:, None, :]
        return padded.gather(2, flat.reshape(b, 1, h * w).expand(b, c, h * w)).reshape(b, c, h, w)


@register
class ResizedCrop(AugmentOp):
    """Cut a window of random area share and aspect ratio and resize it to the full image."""

    op: Literal["resized_crop"] = "resized_crop"
    scale: tuple[float, float] = Field((0.08, 1.0), description="area share of the window")
    ratio: tuple[float, float] = Field((3 / 4, 4 / 3), description="aspect ratio (w / h) range")
    draws = 4

    @model_validator(mode="after")
    def _check(self) -> ResizedCrop:
        low, high = self.scale
        if not 0.0 < low <= high <= 1.0:
            raise ValueError("scale must be (low, high) with 0 < low <= high <= 1")
        if not 0.0 < self.ratio[0] <= self.ratio[1] <= 100.0:
            raise ValueError("ratio must be (low, high) with 0 < low <= high <= 100")
        return self

    def transform(self, x: Any, u: Any, rng: OpRng, stats: Statistics | None) -> Any:
        import torch
        import torch.nn.functional as F

        area = lerp_range(u[:, 0], *self.scale)
        log_r = lerp_range(u[:, 1], math.log(self.ratio[0]), math.log(self.ratio[1]))
        ratio = torch.exp(log_r)
        # window size as a share of the width / height (square-pixel aspect kept)
        cw = torch.sqrt(area * ratio).clamp(max=1.0)
        ch = torch.sqrt(area / ratio).clamp(max=1.0)
        cx = (u[:, 2] * 2 - 1) * (1 - cw)
        cy = (u[:, 3] * 2 - 1) * (1 - ch)
        zero = torch.zeros_like(cw)
        theta = torch.stack(
            [torch.stack([cw, zero, cx], dim=1), torch.stack([zero, ch, cy], dim=1)], dim=1
        )
        grid = affine_grid(theta.to(x.dtype), *x.shape[-2:])
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


@register
class HFlip(AugmentOp):
    """Mirror left-right."""

    op: Literal["hflip"] = "hflip"
    p: float = Field(0.5, ge=0.0, le=1.0, description="probability a sample is flipped")

    def transform(self, x: Any, u: Any, rng: OpRng, stats: Statistics | None) -> Any:
        return x.flip(-1)


@register
class VFlip(AugmentOp):
    """Mirror top-bottom."""

    op: Literal["vflip"] = "vflip"
    p: float = Field(0.5, ge=0.0, le=1.0, description="probability a sample is flipped")

    def transform(self, x: Any, u: Any, rng: OpRng, stats: Statistics | None) -> Any:
        return x.flip(-2)


@register
class Affine(AugmentOp):
    """Random rotation, translation, scale and shear about the image centre."""

    op: Literal["affine"] = "affine"
    degrees: float = Field(15.0, ge=0.0, le=180.0, description="rotation in ±degrees")
    translate: float = Field(0.1, ge=0.0, le=0.5, description="shift, ± share of the size")
    scale: tuple[float, float] = Field((0.9, 1.1), description="zoom range")
    shear: float = Field(0.0, ge=0.0, le=45.0, description="x shear in ±degrees")
    draws = 5

    @model_validator(mode="after")
    def _check(self) -> Affine:
        if not 0.05 <= self.scale[0] <= self.scale[1] <= 10.0:
            raise ValueError("scale must be (low, high) with 0.05 <= low <= high <= 10")
        return self

    def transform(self, x: Any, u: Any, rng: OpRng, stats: Statistics | None) -> Any:
        import torch

        h, w = x.shape[-2:]
        angle = lerp_range(u[:, 0], -self.degrees, self.degrees)
        tx = lerp_range(u[:, 1], -self.translate, self.translate) * w
        ty = lerp_range(u[:, 2], -self.translate, self.translate) * h
        zoom = lerp_range(u[:, 3], *self.scale)
        shear = lerp_range(u[:, 4], -self.shear, self.shear)
        forward = affine_forward(angle, tx, ty, zoom, shear, torch.zeros_like(shear))
        return warp(x, forward, "bilinear")
