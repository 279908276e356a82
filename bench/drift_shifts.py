"""Image shifts for bench/drift.py, on raw (N, C, H, W) batches with values 0..max_value.

Severities are fixed before measuring. Where CIFAR-10-C (Hendrycks & Dietterich, 2019) has
the corruption, "medium" is its severity 3 and "high" its severity 5 (noise σ 0.08 / 0.10 of
the range, blur σ 0.7 / 1.0 px, brightness +0.15 / +0.3 of the range); rotation, occlusion and
class mix are ours. Pixel sizes are absolute, so 8×8 digits get the same blur in pixels.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

SEVERITIES = ("medium", "high")
# shift → {severity: parameter}
PARAMS: dict[str, dict[str, float]] = {
    "gaussian_noise": {"medium": 0.08, "high": 0.10},  # σ as a share of the value range
    "blur": {"medium": 0.7, "high": 1.0},  # Gaussian σ in pixels
    "brightness": {"medium": 0.15, "high": 0.3},  # added, as a share of the value range
    "rotation": {"medium": 15.0, "high": 30.0},  # degrees, random sign per image
    "occlusion": {"medium": 0.25, "high": 0.4},  # side of a black square, share of the side
    "class_mix": {"medium": 3.0, "high": 10.0},  # half the classes this many times as frequent
}
IMAGE_SHIFTS = ("gaussian_noise", "blur", "brightness", "rotation", "occlusion")

Shift = Callable[[np.ndarray, float, float, np.random.Generator], np.ndarray]


def _finish(x: np.ndarray, like: np.ndarray, max_value: float) -> np.ndarray:
    """Clip to the valid range and keep the raw form (integers stay integers)."""
    out = np.clip(x, 0.0, max_value)
    if like.dtype.kind in "ui" or np.all(np.mod(like[:64], 1) == 0):
        out = np.rint(out)
    return out.astype(like.dtype)


def gaussian_noise(x: np.ndarray, p: float, vmax: float, rng: np.random.Generator) -> np.ndarray:
    noisy = x.astype(np.float64) + rng.normal(0.0, p * vmax, size=x.shape)
    return _finish(noisy, x, vmax)


def blur(x: np.ndarray, p: float, vmax: float, rng: np.random.Generator) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    out = gaussian_filter(x.astype(np.float64), sigma=(0, 0, p, p), mode="nearest")
    return _finish(out, x, vmax)


def brightness(x: np.ndarray, p: float, vmax: float, rng: np.random.Generator) -> np.ndarray:
    return _finish(x.astype(np.float64) + p * vmax, x, vmax)


def rotation(x: np.ndarray, p: float, vmax: float, rng: np.random.Generator) -> np.ndarray:
    from scipy.ndimage import rotate

    out = np.empty(x.shape, dtype=np.float64)
    signs = rng.choice([-1.0, 1.0], size=len(x))
    for i in range(len(x)):
        out[i] = rotate(
            x[i].astype(np.float64),
            signs[i] * p,
            axes=(1, 2),
            reshape=False,
            order=1,
            mode="constant",
            cval=0.0,
        )
    return _finish(out, x, vmax)


def occlusion(x: np.ndarray, p: float, vmax: float, rng: np.random.Generator) -> np.ndarray:
    h, w = x.shape[-2:]
    side = max(1, round(p * min(h, w)))
    out = x.copy()
    tops = rng.integers(0, h - side + 1, size=len(x))
    lefts = rng.integers(0, w - side + 1, size=len(x))
    for i in range(len(x)):
        out[i, :, tops[i] : tops[i] + side, lefts[i] : lefts[i] + side] = 0
    return out


SHIFTS: dict[str, Shift] = {
    "gaussian_noise": gaussian_noise,
    "blur": blur,
    "brightness": brightness,
    "rotation": rotation,
    "occlusion": occlusion,
}


def class_mix_weights(y: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """Sampling weights that make a random half of the classes `factor` times as frequent."""
    classes = np.unique(y)
    boosted = rng.choice(classes, size=len(classes) // 2, replace=False)
    weights = np.where(np.isin(y, boosted), factor, 1.0)
    return weights / weights.sum()
