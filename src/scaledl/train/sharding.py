"""Which samples each step and each rank trains on: pure functions of (seed, epoch, step, rank).

The epoch order and the global batches do not depend on the number of processes; a rank takes
a contiguous slice of each global batch. So N processes see exactly the samples one process
would, a resumed run can continue at any step, even with a different number of processes.
"""

from __future__ import annotations

import numpy as np


def step_seed(seed: int, epoch: int, step: int, rank: int = 0) -> int:
    """torch's seed for one step on one rank (rank 0 keeps the single-process value)."""
    base = seed * 1_000_003 + epoch * 10_007 + step
    return (base + rank * 0x9E3779B1) % (2**63 - 1)


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch, 0x5CA1ED]).permutation(n)


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """[start, end) of each global batch of an epoch of `n` samples.

    A last partial batch smaller than half a batch joins the one before it, so every step has
    at least batch_size / 2 samples (BatchNorm and sharding need a few per rank).
    """
    if n <= batch_size:
        return [(0, n)]
    full, rest = divmod(n, batch_size)
    bounds = [(i * batch_size, (i + 1) * batch_size) for i in range(full)]
    if rest and rest * 2 < batch_size:
        bounds[-1] = (bounds[-1][0], n)
    elif rest:
        bounds.append((full * batch_size, n))
    return bounds


def shard(batch: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """This rank's contiguous slice of a global batch (sizes differ by at most one)."""
    return np.array_split(batch, world_size)[rank]


def shard_sizes(n: int, world_size: int) -> list[int]:
    return [len(part) for part in np.array_split(np.arange(n), world_size)]


def check_world_size(n_train: int, batch_size: int, world_size: int) -> str | None:
    """Why `world_size` processes cannot share this training split, or None when they can."""
    if world_size <= 1:
        return None
    if batch_size < 2 * world_size:
        return (
            f"train.batch_size {batch_size} is too small for {world_size} processes: each "
            f"process needs at least 2 samples per step (global batch ≥ {2 * world_size}; the "
            "batch is split across processes, not multiplied)"
        )
    if n_train < 2 * world_size:
        return f"{n_train} training samples cannot be split across {world_size} processes"
    return None
