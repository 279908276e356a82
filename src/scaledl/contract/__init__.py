"""The typed contract between stages: the package manifest and each modality's preprocessing.

Pure data (pydantic only, no runtime imports), so every layer may depend on it.
"""

from __future__ import annotations

from scaledl.contract.manifest import (
    FORMAT,
    FORMAT_VERSION,
    DecisionRule,
    ExportInfo,
    Lineage,
    Manifest,
    Metrics,
    Monitoring,
    Parity,
    Runtime,
    Signature,
    TensorSpec,
)
from scaledl.contract.migrations import migrate
from scaledl.contract.preprocessing import (
    AudioSpec,
    ImageSpec,
    NormalizedSpec,
    Preprocessing,
    SequenceSpec,
    SeriesSpec,
    SpecBase,
    TableSpec,
    TextSpec,
    TokenizerInfo,
    parse_preprocessing,
)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "AudioSpec",
    "DecisionRule",
    "ExportInfo",
    "ImageSpec",
    "Lineage",
    "Manifest",
    "Metrics",
    "Monitoring",
    "NormalizedSpec",
    "Parity",
    "Preprocessing",
    "Runtime",
    "SequenceSpec",
    "SeriesSpec",
    "Signature",
    "SpecBase",
    "TableSpec",
    "TensorSpec",
    "TextSpec",
    "TokenizerInfo",
    "migrate",
    "parse_preprocessing",
]
