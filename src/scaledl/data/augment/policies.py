"""RandAugment and TrivialAugmentWide, vectorized: each sample picks its own ops and strengths.

For every layer each sample draws an op, a sign and (TrivialAugment) a magnitude bin; then each
op runs once on the samples that picked it. Magnitude tables follow torchvision (31 bins).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from pydantic import Field

from scaledl.data.augment import color
from scaledl.data.augment.base import AugmentOp, OpRng, Statistics, register
from scaledl.data.augment.geometry import affine_forward, warp

BINS = 31
OP_NAMES = (
    "identity",
    "shear_x",
    "shear_y",
    "translate_x",
    "translate_y",
    "rotate",
    "brightness",
    "color",
    "contrast",
    "sharpness",
    "posterize",
    "solarize",
    "autocontrast",
    "equalize",
)
SIGNED = {"shear_x", "shear_y", "translate_x", "translate_y", "rotate"} | {
    "brightness",
    "color",
    "contrast",
    "sharpness",
}


def magnitudes(wide: bool, height: int, width: int) -> dict[str, np.ndarray]:
    """Value of each op at magnitude bins 0…30 (translate in pixels, rotate in degrees)."""
    lin = np.linspace
    enhance = 0.99 if wide else 0.9
    bins = np.arange(BINS)
    return {
        "shear_x": lin(0.0, 0.99 if wide else 0.3, BINS),
        "shear_y": lin(0.0, 0.99 if wide else 0.3, BINS),
        "translate_x": lin(0.0, 32.0 if wide else 150.0 / 331.0 * width, BINS),
        "translate_y": lin(0.0, 32.0 if wide else 150.0 / 331.0 * height, BINS),
        "rotate": lin(0.0, 135.0 if wide else 30.0, BINS),
        "brightness": lin(0.0, enhance, BINS),
        "color": lin(0.0, enhance, BINS),
        "contrast": lin(0.0, enhance, BINS),
        "sharpness": lin(0.0, enhance, BINS),
        "posterize": 8 - np.round(bins / ((BINS - 1) / (6 if wide else 4))),
        "solarize": lin(1.0, 0.0, BINS),
    }


def _geometric(kind: str) -> Callable[[Any, Any], Any]:
    def run(x: Any, v: Any) -> Any:
        import torch

        zero, one = torch.zeros_like(v), torch.ones_like(v)
        shear_x = torch.rad2deg(torch.atan(v)) if kind == "shear_x" else zero
        shear_y = torch.rad2deg(torch.atan(v)) if kind == "shear_y" else zero
        angle = v if kind == "rotate" else zero
        tx = v if kind == "translate_x" else zero
        ty = v if kind == "translate_y" else zero
        return warp(x, affine_forward(angle, tx, ty, one, shear_x, shear_y), "nearest")

    return run


PRIMITIVES: dict[str, Callable[[Any, Any], Any]] = {
    "identity": lambda x, v: x,
    "shear_x": _geometric("shear_x"),
    "shear_y": _geometric("shear_y"),
    "translate_x": _geometric("translate_x"),
    "translate_y": _geometric("translate_y"),
    "rotate": _geometric("rotate"),
    "brightness": lambda x, v: color.brightness(x, 1.0 + v),
    "color": lambda x, v: color.saturation(x, 1.0 + v),
    "contrast": lambda x, v: color.contrast(x, 1.0 + v),
    "sharpness": lambda x, v: color.sharpness(x, 1.0 + v),
    "posterize": lambda x, v: color.posterize(x, v),
    "solarize": lambda x, v: color.solarize(x, v),
    "autocontrast": lambda x, v: color.autocontrast(x),
    "equalize": lambda x, v: color.equalize(x),
}


def apply_layer(x: Any, choice: np.ndarray, value: np.ndarray) -> Any:
    """Run op `choice[i]` with value `value[i]` on sample i, each op once over its samples."""
    import torch

    out = x.clone()
    for k, name in enumerate(OP_NAMES):
        rows = np.flatnonzero(choice == k)
        if len(rows) == 0 or name == "identity":
            continue
        sel = torch.from_numpy(rows).to(x.device)
        v = torch.from_numpy(value[rows].astype(np.float32)).to(x.device)
        out.index_copy_(0, sel, PRIMITIVES[name](x.index_select(0, sel), v))
    return out


def layer_values(
    wide: bool, choice: np.ndarray, bins: np.ndarray, sign_u: np.ndarray, hw: tuple[int, int]
) -> np.ndarray:
    table = magnitudes(wide, *hw)
    value = np.zeros(len(choice))
    for k, name in enumerate(OP_NAMES):
        rows = choice == k
        if name in table and rows.any():
            v = table[name][bins[rows]]
            if name in SIGNED:
                v = np.where(sign_u[rows] < 0.5, -v, v)
            value[rows] = v
    return value


@register
class RandAugment(AugmentOp):
    """RandAugment: `n` random ops per sample at a fixed `magnitude` (of 0…30)."""

    op: Literal["randaugment"] = "randaugment"
    n: int = Field(2, ge=1, le=6, description="ops applied one after another")
    magnitude: int = Field(9, ge=0, le=30, description="strength bin (0…30)")

    def transform(self, x: Any, u: Any, rng: OpRng, stats: Statistics | None) -> Any:
        draws = rng.uniform64(2 * self.n, sub=1)
        for layer in range(self.n):
            choice = np.floor(draws[:, 2 * layer] * len(OP_NAMES)).astype(np.int64)
            bins = np.full(len(choice), self.magnitude)
            value = layer_values(False, choice, bins, draws[:, 2 * layer + 1], x.shape[-2:])
            x = apply_layer(x, choice, value)
        return x


@register
class TrivialAugment(AugmentOp):
    """TrivialAugmentWide: one random op per sample at a random strength."""

    op: Literal["trivialaugment"] = "trivialaugment"

    def transform(self, x: Any, u: Any, rng: OpRng, stats: Statistics | None) -> Any:
        draws = rng.uniform64(3, sub=1)
        choice = np.floor(draws[:, 0] * len(OP_NAMES)).astype(np.int64)
        bins = np.floor(draws[:, 1] * BINS).astype(np.int64)
        value = layer_values(True, choice, bins, draws[:, 2], x.shape[-2:])
        return apply_layer(x, choice, value)
