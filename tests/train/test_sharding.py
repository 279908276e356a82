"""Global batches and per-rank shards do not depend on the number of processes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from scaledl.train.sharding import batch_bounds, check_world_size, epoch_order, shard


@pytest.mark.parametrize(("n", "batch"), [(1293, 64), (100, 32), (96, 32), (10, 64), (81, 16)])
def test_batches_cover_every_sample_once_and_keep_half_a_batch(n: int, batch: int) -> None:
    bounds = batch_bounds(n, batch)
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
    sizes = [hi - lo for lo, hi in bounds]
    assert all(size * 2 >= min(batch, n) for size in sizes)


@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_shards_partition_each_global_batch(world: int) -> None:
    order = epoch_order(5, 2, 1293)
    for lo, hi in batch_bounds(1293, 64):
        parts = [shard(order[lo:hi], r, world) for r in range(world)]
        assert np.array_equal(np.concatenate(parts), order[lo:hi])
        assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_epoch_order_depends_only_on_seed_and_epoch() -> None:
    assert np.array_equal(epoch_order(1, 3, 50), epoch_order(1, 3, 50))
    assert not np.array_equal(epoch_order(1, 3, 50), epoch_order(1, 4, 50))


def test_world_size_checks_explain_the_global_batch() -> None:
    assert check_world_size(1000, 64, 2) is None
    message = check_world_size(1000, 64, 40)
    assert message is not None and "global batch" in message and "40 processes" in message
