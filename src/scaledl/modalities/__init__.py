"""Modalities: one unit per kind of input (image, table, sequence), used by every stage.

    unit = modality("image")                      # or modality_of(pkg.manifest.preprocessing)
    splits = load_splits(DataConfig(source="digits"))
    spec = unit.fit(splits)                       # typed, stored in the package manifest
    x = unit.to_graph(spec, splits.test.x)        # raw batch → the graph's input

See `scaledl.modalities.base` for what a unit provides and docs/architecture.md for how to add
one.
"""

from __future__ import annotations

from scaledl.modalities.base import BatchTransform, BodyLimits, Modality
from scaledl.modalities.registry import (
    fit_preprocessing,
    load_data,
    load_splits,
    modality,
    modality_kinds,
    modality_of,
    register_modality,
    to_graph,
)

__all__ = [
    "BatchTransform",
    "BodyLimits",
    "Modality",
    "fit_preprocessing",
    "load_data",
    "load_splits",
    "modality",
    "modality_kinds",
    "modality_of",
    "register_modality",
    "to_graph",
]
