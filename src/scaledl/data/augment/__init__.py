"""Batch augmentation on tensors, reproducible per (seed, epoch, sample index).

Each sample draws its own parameters from a counter-based hash of (seed, epoch, index, stream),
so a sample is augmented the same way whatever batch, worker or rank it lands in.
"""

from __future__ import annotations

from scaledl.data.augment.basic import AugmentConfig, Augmenter, build_augmenter
from scaledl.data.augment.rng import sample_uniform

__all__ = ["AugmentConfig", "Augmenter", "build_augmenter", "sample_uniform"]
