"""The package's machine-readable preprocessing: raw input → what the graph expects.

Stored in `manifest["preprocessing"]` as plain JSON so that serving, evaluation and monitoring
apply exactly what training applied, without torch:

    {"kind": "image" | "table" | "sequence",
     "raw_shape": [C, H, W] | [F] | [T, F],   # one raw sample, batch excluded
     "scale": 0.0039,                          # raw value → [0, 1]-ish (1/255 for 8-bit pixels)
     "mean": [...], "std": [...],              # per channel (image) or per feature (table/sequence)
     "image": {"height": H, "width": W, "channels": C, "max_value": 255}}   # images only
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scaledl.errors import DataError


def channel_axis(kind: str) -> int:
    """Axis of a batched raw array that `mean`/`std` run along."""
    return 1 if kind == "image" else -1


def fit_preprocessing(
    x_train: np.ndarray, kind: str, scale: float, max_value: float | None = None
) -> dict[str, Any]:
    """Normalization statistics computed on the training split only."""
    x = x_train.astype(np.float64) * scale
    if kind == "image":
        axes = tuple(i for i in range(x.ndim) if i != 1)
    else:
        axes = tuple(range(x.ndim - 1))
    mean = x.mean(axis=axes)
    std = x.std(axis=axes)
    std = np.where(std < 1e-8, 1.0, std)
    spec: dict[str, Any] = {
        "kind": kind,
        "raw_shape": list(x_train.shape[1:]),
        "scale": float(scale),
        "mean": [float(v) for v in np.atleast_1d(mean)],
        "std": [float(v) for v in np.atleast_1d(std)],
    }
    if kind == "image":
        c, h, w = x_train.shape[1:]
        spec["image"] = {
            "height": int(h),
            "width": int(w),
            "channels": int(c),
            "max_value": float(max_value if max_value is not None else round(1.0 / scale)),
        }
    return spec


def apply_preprocessing(x: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """Raw batch (N, *raw_shape) → normalized float32 batch for the graph."""
    raw_shape = tuple(spec["raw_shape"])
    if tuple(x.shape[1:]) != raw_shape:
        raise DataError(
            f"raw input has sample shape {tuple(x.shape[1:])}, expected {raw_shape} "
            f"(the shape the model was trained on)"
        )
    out = x.astype(np.float32) * np.float32(spec["scale"])
    axis = channel_axis(spec["kind"])
    shape = [1] * out.ndim
    shape[axis] = -1
    mean = np.asarray(spec["mean"], dtype=np.float32).reshape(shape)
    std = np.asarray(spec["std"], dtype=np.float32).reshape(shape)
    return np.ascontiguousarray((out - mean) / std, dtype=np.float32)
