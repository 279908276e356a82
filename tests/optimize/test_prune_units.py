"""The pieces under structured pruning: kept-count allocation and MAC counting."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from scaledl.models import ModelSpec
from scaledl.optimize.prune.allocate import Group, allocate, round_count
from scaledl.optimize.prune.counting import count_macs, count_params
from tests.optimize.prune_cases import one_thread


@pytest.fixture(autouse=True)
def _single_thread() -> Iterator[None]:
    yield from one_thread()


def group(scores: list[float], round_to: int = 1, copies: int = 1) -> Group:
    t = torch.tensor(scores, dtype=torch.float64)
    return Group("g", t, len(t) // copies, round_to, copies=copies)


def test_round_count_prefers_multiples_and_never_empties_a_group() -> None:
    g = group([1.0] * 40, round_to=16)
    assert round_count(20, g) == 16
    assert round_count(25, g) == 32
    assert round_count(0, g) == 16
    assert round_count(39, g) == 40  # the whole group is always a valid count
    assert round_count(3, group([1.0] * 10, round_to=16)) == 10  # too small to round: kept


def test_global_ranking_takes_from_the_weakest_layer() -> None:
    strong = group([5, 6, 7, 8, 1, 2, 3, 4])  # normalized: only the top half stands out
    flat = group([1.0] * 8)
    keeps = allocate([strong, flat], 0.75, global_ranking=True)
    assert sum(keeps) == 12 and keeps[0] < keeps[1]
    assert allocate([strong, flat], 0.75, global_ranking=False) == [6, 6]


def test_copies_keep_the_same_count_in_each_direction() -> None:
    both = group([9, 9, 9, 9, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1], copies=2)  # fwd | bwd
    assert both.current == 8
    assert allocate([both], 0.5, global_ranking=True) == [4]


def test_mac_counts_match_the_layer_formulas() -> None:
    cnn = ModelSpec("cnn", [1, 8, 8], 10, {"channels": [16, 32], "depth": 1}).build()
    conv1 = 8 * 8 * 16 * 1 * 9
    conv2 = 4 * 4 * 32 * 16 * 9
    assert count_macs(cnn, [1, 8, 8]) == conv1 + conv2 + 32 * 10
    gru = ModelSpec("rnn", [8, 4], 10, {"cell": "gru", "hidden": 16}).build()
    assert count_macs(gru, [8, 4]) == 8 * 3 * 16 * (4 + 16) + 16 * 10
    mlp = ModelSpec("mlp", [64], 10, {"hidden": [32]}).build()
    assert count_macs(mlp, [64]) == 64 * 32 + 32 * 10
    assert count_params(mlp) == 64 * 32 + 32 + 32 * 10 + 10
