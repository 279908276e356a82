"""Slim specs: same family, fewer/narrower layers, aligned widths, clear refusals."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from scaledl.errors import ModelError, UsageError
from scaledl.models import ModelSpec
from scaledl.optimize.prune.counting import count_params
from scaledl.optimize.slim import slim_spec
from tests.optimize.prune_cases import one_thread


@pytest.fixture(autouse=True)
def _single_thread() -> Iterator[None]:
    yield from one_thread()


PARENTS = [
    ModelSpec("cnn", [3, 32, 32], 10, {"channels": [32, 64, 128], "depth": 2, "kernel_size": 5}),
    ModelSpec("mlp", [64], 10, {"hidden": [256, 128, 64]}),
    ModelSpec("rnn", [8, 8], 10, {"cell": "lstm", "hidden": 96, "layers": 2}),
    ModelSpec("transformer", [1, 8, 8], 10, {"d_model": 96, "heads": 3, "layers": 2, "ff": 192}),
]


@pytest.mark.parametrize("parent", PARENTS, ids=lambda s: s.family)
def test_slim_spec_builds_a_smaller_model_of_the_same_family(parent: ModelSpec) -> None:
    slim = slim_spec(parent, width=0.5, depth=0.5)
    assert slim.family == parent.family and slim.input_shape == parent.input_shape
    model = slim.build()
    assert count_params(model) < count_params(parent.build())
    out = model(torch.zeros(2, *slim.input_shape))
    assert out.shape == (2, 10)


def test_widths_are_multiples_of_8_and_depth_keeps_one_layer() -> None:
    cnn = slim_spec(PARENTS[0], width=0.3, depth=0.1, kernel_size=3)
    assert cnn.knobs["channels"] == [8, 16, 40]
    assert cnn.knobs["depth"] == 1 and cnn.knobs["kernel_size"] == 3
    transformer = slim_spec(PARENTS[3], width=0.5)
    assert transformer.knobs["d_model"] % 24 == 0  # aligned to 8 and split into 3 heads
    assert slim_spec(PARENTS[1], depth=0.34).knobs["hidden"] == [256]
    staged = ModelSpec(
        "cnn", [3, 32, 32], 10, {"channels": [32, 64, 128], "depth": [1, 3, 2], "residual": True}
    )
    assert slim_spec(staged, width=0.5, depth=0.5).knobs["depth"] == [1, 2, 1]


def test_a_pruned_parent_folds_back_to_uniform_widths() -> None:
    pruned = ModelSpec(
        "cnn", [1, 8, 8], 10, {"channels": [16, 32], "depth": 2, "widths": [[8, 16], [24, 32]]}
    )
    slim = slim_spec(pruned, width=0.5)
    assert slim.knobs["channels"] == [8, 16] and slim.knobs.get("widths") is None
    slim.build()
    transformer = ModelSpec(
        "transformer",
        [1, 8, 8],
        10,
        {
            "d_model": 64,
            "heads": 4,
            "layers": 2,
            "ff": 128,
            "head_dim": 16,
            "layer_heads": [2, 3],
            "layer_ff": [64, 96],
        },
    )
    slim_t = slim_spec(transformer, width=0.5, depth=0.5)
    assert slim_t.knobs["layer_heads"] == [2] and slim_t.knobs["layer_ff"] == [32]
    slim_t.build()


def test_refusals_name_what_is_valid() -> None:
    with pytest.raises(UsageError, match=r"\(0, 1\]"):
        slim_spec(PARENTS[0], width=1.5)
    with pytest.raises(UsageError, match="odd sizes"):
        slim_spec(PARENTS[0], kernel_size=4)
    with pytest.raises(UsageError, match="cnn models only"):
        slim_spec(PARENTS[1], kernel_size=3)
    with pytest.raises(ModelError, match="does not make it smaller"):
        slim_spec(ModelSpec("cnn", [1, 8, 8], 10, {"channels": [8], "depth": 1}), width=0.5)
    with pytest.raises(ModelError, match="cannot slim"):
        slim_spec(ModelSpec("custom", [4], 2, {"class_path": "torch.nn:Linear"}), width=0.5)
