"""Data sources, deterministic splits and augmentation.

`load_splits(DataConfig(source="digits"), seed=0)` returns train/validation/test arrays in their
raw form (uint8 pixels, float features); normalization statistics come from the training split.
"""

from __future__ import annotations

from scaledl.data.config import DataConfig
from scaledl.data.dataset import ArraySet, DataSplits, LoadedData, make_splits
from scaledl.data.sources import load_data


def load_splits(config: DataConfig, seed: int = 0, task: str = "classification") -> DataSplits:
    loaded = load_data(config, task)
    return make_splits(
        loaded,
        config.val_fraction,
        config.test_fraction,
        seed,
        classification=task == "classification",
        allow_small_classes=config.allow_small_classes,
    )


__all__ = ["ArraySet", "DataConfig", "DataSplits", "LoadedData", "load_data", "load_splits"]
