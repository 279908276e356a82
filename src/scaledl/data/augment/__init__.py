"""Batch augmentation on tensors, reproducible per (seed, epoch, sample index).

Each sample draws its own parameters from a counter-based hash of (seed, epoch, index, stream),
so a sample is augmented the same way whatever batch, worker or rank it lands in.
"""

from __future__ import annotations

from scaledl.config.augment import AugmentConfig

# importing the op modules registers their ops
from scaledl.data.augment import (  # noqa: F401
    audio,
    color,
    geometry,
    mixing,
    policies,
    series,
    text,
)
from scaledl.data.augment.base import OPS, AugmentOp
from scaledl.data.augment.pipeline import Augmenter, PolicyAugmenter, build_augmenter
from scaledl.data.augment.rng import sample_normal, sample_uniform

__all__ = [
    "OPS",
    "AugmentConfig",
    "AugmentOp",
    "Augmenter",
    "PolicyAugmenter",
    "build_augmenter",
    "sample_normal",
    "sample_uniform",
]
