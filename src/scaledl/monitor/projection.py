"""A linear projection of model inputs to a few components (PCA), stored as plain matrices.

The monitor compares distributions in this space: ~32 numbers per sample instead of thousands
of pixels, which keeps per-component tests powerful and live windows small.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Projection:
    mean: np.ndarray  # (D,) float32, the fitted inputs' mean
    components: np.ndarray  # (k, D) float32, orthonormal rows
    explained_variance: np.ndarray  # (k,) float64, variance along each component (fit data)

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    @property
    def k(self) -> int:
        return int(self.components.shape[0])

    def transform(self, x: np.ndarray) -> np.ndarray:
        """(N, ...) preprocessed inputs → (N, k) float32 projected features."""
        flat = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
        if flat.shape[1] != self.dim:
            raise ValueError(f"inputs have {flat.shape[1]} values per sample, expected {self.dim}")
        return np.asarray((flat - self.mean) @ self.components.T, dtype=np.float32)


def fit_pca(x: np.ndarray, components: int, seed: int = 0) -> Projection:
    """PCA of (N, ...) inputs, flattened; randomized SVD when the data is large."""
    flat = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
    n, d = flat.shape
    k = max(1, min(components, n - 1, d))
    mean = flat.mean(axis=0)
    centered = flat - mean
    if min(n, d) <= 1024:
        _, s, vt = np.linalg.svd(centered.astype(np.float64), full_matrices=False)
        s, vt = s[:k], vt[:k]
    else:
        from sklearn.utils.extmath import randomized_svd

        _, s, vt = randomized_svd(centered, k, n_iter=6, random_state=seed)
    # Fix each component's sign (largest loading positive) so refits give the same axes.
    signs = np.sign(vt[np.arange(k), np.abs(vt).argmax(axis=1)])
    vt = vt * np.where(signs == 0, 1.0, signs)[:, None]
    variance = (np.asarray(s, dtype=np.float64) ** 2) / max(n - 1, 1)
    return Projection(
        mean=mean.astype(np.float32),
        components=np.asarray(vt, dtype=np.float32),
        explained_variance=variance,
    )


def standardizing_projection(x: np.ndarray) -> Projection:
    """Readable features kept as they are, each centred and scaled to unit variance (a
    diagonal "projection"): the tests then speak of named features, not PCA components."""
    flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    mean = flat.mean(axis=0)
    std = flat.std(axis=0)
    std = np.where(std < 1e-12, 1.0, std)
    return Projection(
        mean=mean.astype(np.float32),
        components=np.diag(1.0 / std).astype(np.float32),
        explained_variance=np.ones(flat.shape[1], dtype=np.float64),
    )
