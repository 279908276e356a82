"""The Normalizer leaves the caller's raw arrays untouched (float32 input shares memory)."""

from __future__ import annotations

import numpy as np

from scaledl.train.tensors import Normalizer


def test_float32_input_is_not_rescaled_in_place() -> None:
    spec = {"kind": "image", "raw_shape": [1, 2, 2], "scale": 0.0625, "mean": [0.0], "std": [1.0]}
    x = np.full((3, 1, 2, 2), 16.0, dtype=np.float32)
    first = Normalizer(spec)(x[:2]).numpy()
    second = Normalizer(spec)(x[:2]).numpy()
    assert np.array_equal(x, np.full_like(x, 16.0))
    assert np.allclose(first, 1.0) and np.allclose(second, 1.0)
