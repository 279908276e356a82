"""Data core: in-memory data sets, deterministic splits, fingerprints and augmentation.

The readers of each kind of source, and `load_splits`, live with their modality
(`scaledl.modalities`): `load_splits(DataConfig(source="digits"), seed=0)` returns
train/validation/test arrays in their raw form (uint8 pixels, float features).
"""

from __future__ import annotations

from scaledl.config.data import DataConfig
from scaledl.data.dataset import ArraySet, DataSplits, LoadedData, make_splits

__all__ = ["ArraySet", "DataConfig", "DataSplits", "LoadedData", "make_splits"]
