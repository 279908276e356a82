"""Training's batch transform leaves the caller's raw arrays untouched (float32 input shares
memory with the tensor it makes)."""

from __future__ import annotations

import numpy as np

from scaledl.contract import parse_preprocessing
from scaledl.modalities import modality_of


def test_float32_input_is_not_rescaled_in_place() -> None:
    spec = parse_preprocessing(
        {
            "kind": "image",
            "raw_shape": [1, 2, 2],
            "scale": 0.0625,
            "mean": [0.0],
            "std": [1.0],
            "image": {"height": 2, "width": 2, "channels": 1, "max_value": 16.0},
        }
    )
    x = np.full((3, 1, 2, 2), 16.0, dtype=np.float32)
    first = modality_of(spec).batch_transform(spec)(x[:2]).numpy()
    second = modality_of(spec).batch_transform(spec)(x[:2]).numpy()
    assert np.array_equal(x, np.full_like(x, 16.0))
    assert np.allclose(first, 1.0) and np.allclose(second, 1.0)
