"""Modalities whose preprocessing is `(raw × scale − mean) / std` per channel or feature.

The formula is written once (`normalize`) and runs on numpy arrays (serving, evaluation,
monitoring) and on torch tensors (training) alike, so the two can never disagree.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from scaledl.contract import NormalizedSpec
from scaledl.data.dataset import DataSplits
from scaledl.modalities.base import BatchTransform, Modality


def statistics_shape(ndim: int, axis: int) -> list[int]:
    """Broadcast shape of per-channel statistics for a batch of `ndim` dimensions."""
    shape = [1] * ndim
    shape[axis] = -1
    return shape


def normalize(x: Any, mean: Any, std: Any) -> Any:
    """The one normalization: numpy arrays or torch tensors, statistics already shaped."""
    return (x - mean) / std


class NormalizedModality(Modality):
    spec_type: ClassVar[type[NormalizedSpec]]

    # ---- preprocessing ------------------------------------------------------------------
    def fit(self, splits: DataSplits) -> NormalizedSpec:
        x_train = splits.train.x
        scale = splits.scale
        x = x_train.astype(np.float64) * scale
        axis = self.channel_axis() % x.ndim
        axes = tuple(i for i in range(x.ndim) if i != axis)
        mean = np.atleast_1d(x.mean(axis=axes))
        std = np.atleast_1d(x.std(axis=axes))
        std = np.where(std < 1e-8, 1.0, std)
        return self.spec_type.model_validate(
            {
                "kind": self.kind,
                "raw_shape": list(x_train.shape[1:]),
                "scale": float(scale),
                "mean": [float(v) for v in mean],
                "std": [float(v) for v in std],
                **self.extra_spec(splits),
            }
        )

    def extra_spec(self, splits: DataSplits) -> dict[str, Any]:
        """Modality-specific spec fields beside the statistics."""
        return {}

    def to_graph(self, spec: NormalizedSpec, raw: Any) -> np.ndarray:
        self.check_raw(spec, raw)
        x = np.asarray(raw).astype(np.float32) * np.float32(spec.scale)
        mean, std = self._statistics(spec, x.ndim)
        return np.ascontiguousarray(normalize(x, mean, std), dtype=np.float32)

    def batch_transform(self, spec: NormalizedSpec) -> Normalizer:
        return Normalizer(spec, self.channel_axis())

    def _statistics(self, spec: NormalizedSpec, ndim: int) -> tuple[np.ndarray, np.ndarray]:
        shape = statistics_shape(ndim, self.channel_axis())
        mean = np.asarray(spec.mean, dtype=np.float32).reshape(shape)
        std = np.asarray(spec.std, dtype=np.float32).reshape(shape)
        return mean, std

    # ---- monitoring ---------------------------------------------------------------------
    def channel_axis(self) -> int:
        return -1


class Normalizer(BatchTransform):
    """Training's normalization: raw → ×scale (`load`, augmentation runs after) → (x − mean) /
    std (`finish`), with the statistics moved to the training device once."""

    def __init__(self, spec: NormalizedSpec, axis: int) -> None:
        import torch

        self.scale = float(spec.scale)
        shape = statistics_shape(len(spec.raw_shape) + 1, axis)
        self.mean = torch.tensor(spec.mean, dtype=torch.float32).reshape(shape)
        self.std = torch.tensor(spec.std, dtype=torch.float32).reshape(shape)
        self.device = torch.device("cpu")

    def to(self, device: Any) -> Normalizer:
        import torch

        self.device = torch.device(device)
        self.mean, self.std = self.mean.to(self.device), self.std.to(self.device)
        return self

    def load(self, raw: np.ndarray) -> Any:
        import torch

        # Out of place: for float32 input, from_numpy/.to share the caller's memory, and an
        # in-place multiply would rescale the caller's array (e.g. the validation split) again
        # on every pass.
        t = torch.from_numpy(np.ascontiguousarray(raw)).to(torch.float32).mul(self.scale)
        return t if self.device.type == "cpu" else t.to(self.device, non_blocking=True)

    def finish(self, x: Any) -> Any:
        return normalize(x, self.mean, self.std)
