"""The package's preprocessing, for code outside the stages: raw input → what the graph expects.

A thin facade over the modality seam (`scaledl.modalities`): the spec is the manifest's typed
`preprocessing` (or its JSON form), and the one implementation is its modality's `to_graph`,
the same code training, `scaledl evaluate`, the server and the monitor run.

    x = apply_preprocessing(raw_rows, open_package("pkg").manifest.preprocessing)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scaledl.contract import SpecBase, parse_preprocessing


def as_spec(spec: SpecBase | dict[str, Any]) -> SpecBase:
    return spec if isinstance(spec, SpecBase) else parse_preprocessing(spec)


def apply_preprocessing(x: Any, spec: SpecBase | dict[str, Any]) -> np.ndarray:
    """Raw batch (N, *raw_shape) → the graph's input batch."""
    from scaledl.modalities import to_graph

    return to_graph(as_spec(spec), x)


def fit_preprocessing(splits: Any) -> SpecBase:
    """What the splits' modality learns from the training rows (a typed spec)."""
    from scaledl.modalities import fit_preprocessing as fit

    return fit(splits)
