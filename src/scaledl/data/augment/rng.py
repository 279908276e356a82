"""Counter-based random numbers: uniform(seed, epoch, index, stream) with no shared state.

A sample's draws depend only on (seed, epoch, sample index, stream), never on which batch,
data-loader worker or rank it is in, so augmentation is reproducible at any scale.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = z + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def sample_uniform(
    seed: int, epoch: int, index: np.ndarray, stream: int, count: int = 1
) -> np.ndarray:
    """(len(index), count) floats in [0, 1), a pure function of its arguments."""
    idx = np.asarray(index, dtype=np.uint64)
    with np.errstate(over="ignore"):
        key = _splitmix64(
            np.asarray(np.uint64(seed & 0xFFFFFFFF) * np.uint64(1_000_003) + np.uint64(epoch))
        )
        key = _splitmix64(key ^ np.uint64(stream * 0x632BE59BD9B4E019 & 0xFFFFFFFFFFFFFFFF))
        base = _splitmix64(idx ^ key)
        draws = base[:, None] + np.arange(1, count + 1, dtype=np.uint64)[None, :] * _GOLDEN
    bits = _splitmix64(draws) >> np.uint64(11)
    return bits.astype(np.float64) / float(1 << 53)


def sample_normal(
    seed: int, epoch: int, index: np.ndarray, stream: int, count: int = 1
) -> np.ndarray:
    """(len(index), count) standard normal floats (Box–Muller over `sample_uniform`)."""
    u = sample_uniform(seed, epoch, index, stream, 2 * count)
    radius = np.sqrt(-2.0 * np.log1p(-u[:, :count]))  # 1 - u lies in (0, 1]
    return radius * np.cos(2.0 * np.pi * u[:, count:])
