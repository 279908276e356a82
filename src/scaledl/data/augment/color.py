"""Photometric image ops and the pixel primitives RandAugment / TrivialAugment share.

Images are float batches (B, C, H, W) in [0, 1]. Every primitive takes a per-sample factor
tensor (B,) and works elementwise or per sample, so results do not depend on the batch.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, model_validator

from scaledl.data.augment.base import AugmentOp, OpRng, Statistics, lerp_range, per_sample, register


def gray(x: Any) -> Any:
    """Luma (B, 1, H, W) of RGB images (ITU-R 601); grey images are returned as they are."""
    if x.shape[1] != 3:
        return x
    return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def blend(img: Any, other: Any, factor: Any) -> Any:
    """other + (img − other)·factor, clamped: factor 1 keeps `img`, 0 gives `other`."""
    return (other + (img - other) * per_sample(factor, img)).clamp(0.0, 1.0)


def image_mean(x: Any) -> Any:
    """Per-sample mean over (C, H, W), accumulated in float64 so any batch gives the same."""
    return x.double().mean(dim=tuple(range(1, x.dim())), keepdim=True).to(x.dtype)


def brightness(x: Any, f: Any) -> Any:
    return (x * per_sample(f, x)).clamp(0.0, 1.0)


def contrast(x: Any, f: Any) -> Any:
    return blend(x, image_mean(gray(x)), f)


def saturation(x: Any, f: Any) -> Any:
    return x if x.shape[1] != 3 else blend(x, gray(x), f)


def hue(x: Any, shift: Any) -> Any:
    """Rotate hue by `shift` turns (−0.5…0.5) in YIQ space."""
    import torch

    if x.shape[1] != 3:
        return x
    yiq = torch.tensor(
        [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
        dtype=x.dtype,
        device=x.device,
    )
    back = torch.linalg.inv(yiq)
    # the per-sample colour matrix back · R(angle) · yiq, written as P + cos·Q + sin·S so that
    # it is computed elementwise (no batched matmul whose rounding could depend on the batch)
    p = back[:, :1] @ yiq[:1]
    q = back[:, 1:2] @ yiq[1:2] + back[:, 2:3] @ yiq[2:3]
    s = back[:, 2:3] @ yiq[1:2] - back[:, 1:2] @ yiq[2:3]
    angle = shift.to(x.dtype) * 2 * math.pi
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    m = (p + cos * q + sin * s)[:, :, :, None, None]
    out = [m[:, c, 0] * x[:, 0] + m[:, c, 1] * x[:, 1] + m[:, c, 2] * x[:, 2] for c in range(3)]
    return torch.stack(out, dim=1).clamp(0.0, 1.0)


def sharpness(x: Any, f: Any) -> Any:
    """Blend with a 3×3 smoothed image (PIL's SMOOTH kernel); borders stay as they are."""
    if x.shape[-1] < 3 or x.shape[-2] < 3:
        return x
    h, w = x.shape[-2:]
    acc = x[..., 1 : h - 1, 1 : w - 1] * 5.0
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            if (dy, dx) != (1, 1):
                acc = acc + x[..., dy : h - 2 + dy, dx : w - 2 + dx]
    smooth = x.clone()
    smooth[..., 1 : h - 1, 1 : w - 1] = acc / 13.0
    return blend(x, smooth, f)


def posterize(x: Any, bits: Any) -> Any:
    step = per_sample(2.0 ** (8 - bits.to(x.dtype)), x)
    return (x * 255.0).floor().div(step).floor().mul(step).div(255.0)


def solarize(x: Any, threshold: Any) -> Any:
    return (x >= per_sample(threshold, x)).to(x.dtype) * (1.0 - 2.0 * x) + x


def autocontrast(x: Any) -> Any:
    low = x.amin(dim=(-2, -1), keepdim=True)
    high = x.amax(dim=(-2, -1), keepdim=True)
    span = high - low
    ok = span > 0
    return ((x - low) / span.where(ok, 1.0)).where(ok, x).clamp(0.0, 1.0)


def equalize(x: Any) -> Any:
    """Histogram equalization per channel on 256 levels (PIL's algorithm)."""
    import torch

    b, c, h, w = x.shape
    q = (x * 255.0).round().clamp(0, 255).long().reshape(b * c, h * w)
    hist = torch.zeros(b * c, 256, dtype=torch.long, device=x.device)
    hist.scatter_add_(1, q, torch.ones_like(q))
    levels = torch.arange(256, device=x.device)
    last = (levels * (hist > 0)).amax(dim=1, keepdim=True)
    step = (h * w - hist.gather(1, last)) // 255
    lut = ((hist.cumsum(1) - hist + step // 2) // step.clamp(min=1)).clamp(0, 255)
    out = torch.where(step > 0, lut.gather(1, q), q)
    return out.reshape(b, c, h, w).to(x.dtype) / 255.0


@register
class ColorJitter(AugmentOp):
    """Random brightness, contrast, saturation and hue, each factor drawn per sample."""

    op: Literal["color_jitter"] = "color_jitter"
    brightness: float = Field(0.4, ge=0.0, le=1.0, description="factor in 1 ± value")
    contrast: float = Field(0.4, ge=0.0, le=1.0, description="factor in 1 ± value")
    saturation: float = Field(0.4, ge=0.0, le=1.0, description="factor in 1 ± value")
    hue: float = Field(0.0, ge=0.0, le=0.5, description="shift in ± turns of the colour wheel")
    draws = 4

    def transform(self, x: Any, u: Any, rng: OpRng, stats: Statistics | None) -> Any:
        if self.brightness:
            x = brightness(x, lerp_range(u[:, 0], 1 - self.brightness, 1 + self.brightness))
        if self.contrast:
            x = contrast(x, lerp_range(u[:, 1], 1 - self.contrast, 1 + self.contrast))
        if self.saturation:
            x = saturation(x, lerp_range(u[:, 2], 1 - self.saturation, 1 + self.saturation))
        if self.hue:
            x = hue(x, lerp_range(u[:, 3], -self.hue, self.hue))
        return x


@register
class Erasing(AugmentOp):
    """Random erasing (cutout): fill a random rectangle with `value`."""

    op: Literal["erasing"] = "erasing"
    p: float = Field(0.5, ge=0.0, le=1.0, description="probability a sample is erased")
    scale: tuple[float, float] = Field((0.02, 0.33), description="area share of the rectangle")
    ratio: tuple[float, float] = Field((0.3, 3.3), description="aspect ratio (h / w) range")
    value: float = Field(0.0, ge=0.0, le=1.0, description="fill value in [0, 1] scale")
    draws = 4

    @model_validator(mode="after")
    def _check(self) -> Erasing:
        if not 0.0 < self.scale[0] <= self.scale[1] <= 1.0:
            raise ValueError("scale must be (low, high) with 0 < low <= high <= 1")
        if not 0.0 < self.ratio[0] <= self.ratio[1] <= 100.0:
            raise ValueError("ratio must be (low, high) with 0 < low <= high <= 100")
        return self

    def transform(self, x: Any, u: Any, rng: OpRng, stats: Statistics | None) -> Any:
        import torch

        h, w = x.shape[-2:]
        area = lerp_range(u[:, 0], *self.scale) * (h * w)
        ratio = torch.exp(lerp_range(u[:, 1], math.log(self.ratio[0]), math.log(self.ratio[1])))
        eh = torch.sqrt(area * ratio).round().clamp(1, h)
        ew = torch.sqrt(area / ratio).round().clamp(1, w)
        top = torch.floor(u[:, 2] * (h - eh + 1))
        left = torch.floor(u[:, 3] * (w - ew + 1))
        rows = torch.arange(h, device=x.device, dtype=x.dtype)[None, :]
        cols = torch.arange(w, device=x.device, dtype=x.dtype)[None, :]
        in_rows = (rows >= top[:, None]) & (rows < (top + eh)[:, None])
        in_cols = (cols >= left[:, None]) & (cols < (left + ew)[:, None])
        mask = (in_rows[:, :, None] & in_cols[:, None, :])[:, None]
        return x.masked_fill(mask, self.value)
