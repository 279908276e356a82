"""The embedded default data set (the readers for every other source live with their modality)."""

from __future__ import annotations

import numpy as np

from scaledl.data.dataset import ArraySet, LoadedData, fingerprint_arrays


def load_digits_data() -> LoadedData:
    """scikit-learn's bundled handwritten digits: 1,797 8×8 images, values 0–16, no download."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype(np.uint8)[:, None, :, :]
    y = bunch.target.astype(np.int64)
    return LoadedData(
        data=ArraySet(x, y),
        kind="image",
        labels=[str(int(t)) for t in bunch.target_names],
        scale=1.0 / 16.0,
        max_value=16.0,
        fingerprint=fingerprint_arrays(x, y),
        source="digits",
    )
