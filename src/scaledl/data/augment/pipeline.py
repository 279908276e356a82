"""The augmenter a recipe builds: its policy applied to a training batch in [0, 1] scale."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from scaledl.data.augment.base import OPS, OpRng, Statistics
from scaledl.data.augment.config import AugmentConfig
from scaledl.data.augment.mixing import MixingOp
from scaledl.errors import DataError, RecipeError

MIX_STREAM = 7


class Augmenter(Protocol):
    def __call__(
        self, x: Any, y: Any, *, seed: int, epoch: int, index: np.ndarray
    ) -> tuple[Any, Any | None]:
        """Augment a batch (x in [0, 1] scale); return (x, soft targets or None)."""
        ...


class PolicyAugmenter:
    """Callable `(x, y, *, seed, epoch, index) -> (x, soft targets | None)`.

    `index` holds each sample's row in the training split: it keys the sample's random draws.
    Ops that need the training split (partners for mixing, per-feature statistics) read it from
    `bind(...)`, which the trainer calls before the first batch.
    """

    def __init__(self, config: AugmentConfig, kind: str) -> None:
        for op in config.policy:
            if kind not in op.kinds:
                fits = sorted(name for name, cls in OPS.items() if kind in cls.kinds)
                raise RecipeError(
                    f"augment.policy: {op.op!r} does not apply to {kind} data "
                    f"(ops for {kind} data: {', '.join(fits)})"
                )
        self.config = config
        self.kind = kind
        self.ops = [op for op in config.policy if not op.mixing and op.stage == "input"]
        self.feature_ops = [op for op in config.policy if op.stage == "features"]
        self.mixers = [op for op in config.policy if isinstance(op, MixingOp)]
        self._source: tuple[np.ndarray, np.ndarray, float] | None = None
        self._num_classes: int | None = None
        self._stats: Statistics | None = None
        self._device_stats: dict[str, Statistics] = {}

    def bind(
        self, x_train: np.ndarray, y_train: np.ndarray, scale: float, num_classes: int | None
    ) -> PolicyAugmenter:
        """Give the augmenter the raw training split (rows are read, never copied)."""
        if self.mixers and num_classes is None:
            raise RecipeError(
                "augment.policy: mixup and cutmix mix class labels; they need a classification task"
            )
        self._source = (x_train, y_train, float(scale))
        self._num_classes = num_classes
        self._stats = None
        self._device_stats = {}
        return self

    def __call__(
        self, x: Any, y: Any, *, seed: int, epoch: int, index: np.ndarray
    ) -> tuple[Any, Any | None]:
        index = np.asarray(index, dtype=np.int64)
        x = self.apply_ops(x, seed=seed, epoch=epoch, index=index)
        if not self.mixers:
            return x, None
        return self._mix(x, y, seed, epoch, index)

    def apply_ops(self, x: Any, *, seed: int, epoch: int, index: np.ndarray) -> Any:
        stats = self._statistics(x.device) if any(op.needs_stats for op in self.ops) else None
        for position, op in enumerate(self.config.policy):
            if not op.mixing and op.stage == "input":
                rng = OpRng(seed, epoch, index, stream=101 + position, device=x.device)
                x = op.apply(x, rng, stats)
        return x

    def feature_augment(self, *, seed: int, epoch: int, index: np.ndarray) -> Any:
        """The batch's feature-level ops as one function of the front-end's features (None when
        the policy has none); each sample's draws are keyed by its index like the others'."""
        if not self.feature_ops:
            return None
        index = np.asarray(index, dtype=np.int64)
        positions = [i for i, op in enumerate(self.config.policy) if op.stage == "features"]

        def apply(features: Any) -> Any:
            for position in positions:
                op = self.config.policy[position]
                rng = OpRng(seed, epoch, index, stream=101 + position, device=features.device)
                features = op.apply(features, rng, None)
            return features

        return apply

    def _mix(self, x: Any, y: Any, seed: int, epoch: int, index: np.ndarray) -> tuple[Any, Any]:
        import torch

        x_train, y_train, scale = self._bound()
        k = self._num_classes
        assert k is not None
        soft = torch.nn.functional.one_hot(y.long().to(x.device), k).to(x.dtype)
        u = OpRng(seed, epoch, index, stream=MIX_STREAM).uniform64(3)
        which = np.minimum(np.floor(u[:, 0] * len(self.mixers)), len(self.mixers) - 1)
        out_x, out_soft = x.clone(), soft.clone()
        for j, op in enumerate(self.mixers):
            rows = np.flatnonzero((which == j) & (u[:, 1] < op.p))
            if len(rows) == 0:
                continue
            partner = np.minimum(np.floor(u[rows, 2] * len(x_train)), len(x_train) - 1)
            partner = partner.astype(np.int64)
            px = torch.from_numpy(np.ascontiguousarray(x_train[partner])).to(torch.float32)
            px = self.apply_ops(px.mul_(scale).to(x.device), seed=seed, epoch=epoch, index=partner)
            py = torch.from_numpy(np.asarray(y_train[partner])).long().to(x.device)
            psoft = torch.nn.functional.one_hot(py, k).to(x.dtype)
            sel = torch.from_numpy(rows).to(x.device)
            rng = OpRng(seed, epoch, index[rows], stream=MIX_STREAM + 1 + j, device=x.device)
            out_x[sel], out_soft[sel] = op.mix(x[sel], soft[sel], px, psoft, rng)
        return out_x, out_soft

    def _bound(self) -> tuple[np.ndarray, np.ndarray, float]:
        if self._source is None:
            raise DataError(
                "augment.policy: mixup/cutmix draw partners from the training split; call "
                "augmenter.bind(x_train, y_train, scale, num_classes) first (the trainer does)"
            )
        return self._source

    def _statistics(self, device: Any) -> Statistics:
        import torch

        if self._stats is None:
            x_train, _, scale = self._bound()
            flat = x_train.reshape(-1, x_train.shape[-1]).astype(np.float64) * scale
            std = flat.std(axis=0)
            self._stats = Statistics(
                torch.from_numpy(flat.mean(axis=0).astype(np.float32)),
                torch.from_numpy(np.where(std < 1e-8, 1.0, std).astype(np.float32)),
            )
        key = str(device)
        if key not in self._device_stats:  # moved once per device, not once per batch
            stats = Statistics(self._stats.mean.to(device), self._stats.std.to(device))
            self._device_stats[key] = stats
        return self._device_stats[key]


def build_augmenter(config: AugmentConfig, kind: str) -> PolicyAugmenter | None:
    """An augmenter for the data kind, or None when the policy is empty."""
    if not config.policy:
        return None
    return PolicyAugmenter(config, kind)
