"""Sequences: (T, F) steps of numeric features per sample, normalized per feature.

Source: `.npz` arrays with `data.kind: sequence`. The graph takes (N, T, F) float32.
"""

from __future__ import annotations

from typing import ClassVar

from scaledl.contract import SequenceSpec
from scaledl.modalities.normalized import NormalizedModality


class SequenceModality(NormalizedModality):
    kind: ClassVar[str] = "sequence"
    spec_type: ClassVar[type[SequenceSpec]] = SequenceSpec
