"""Fixtures for monitor tests: the digits package's profile and its raw held-out data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scaledl.monitor.profile import ReferenceProfile


@pytest.fixture(scope="session")
def digits_profile(digits_package: Path) -> ReferenceProfile:
    from scaledl.monitor.reference import package_profile
    from scaledl.package import open_package

    return package_profile(open_package(digits_package))


@pytest.fixture(scope="session")
def digits_raw() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits images (N, 1, 8, 8), values 0–16, and their labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images[:, None].astype(np.float32), bunch.target.astype(np.int64)


def noisy(x: np.ndarray, sigma: float = 3.0, seed: int = 0) -> np.ndarray:
    """Digits with strong Gaussian noise, clipped to 0–16: a shift with a known answer."""
    rng = np.random.default_rng(seed)
    return np.clip(np.rint(x + rng.normal(0, sigma, x.shape)), 0, 16).astype(np.float32)


@pytest.fixture(scope="session")
def digits_heldout() -> tuple[np.ndarray, np.ndarray]:
    """The digits package's test split (360 raw images never trained on) and labels."""
    from scaledl.data import DataConfig
    from scaledl.modalities import load_splits

    splits = load_splits(DataConfig(), seed=0, task="classification")
    return splits.test.x.astype(np.float32), splits.test.y
