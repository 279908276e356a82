"""Unstructured magnitude pruning: zeros at the smallest weights, same shapes, honest stats."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from scaledl.errors import UsageError
from scaledl.optimize.prune import prune_unstructured
from scaledl.optimize.prune.unstructured import prunable_weights
from tests.optimize.prune_cases import SPECS, one_thread, trained_like


@pytest.fixture(autouse=True)
def _single_thread() -> Iterator[None]:
    yield from one_thread()


@pytest.mark.parametrize("name", ["cnn", "gru-bidirectional", "transformer"])
def test_zeros_the_smallest_weights_and_keeps_shapes(name: str) -> None:
    spec = SPECS[name]
    model = trained_like(spec)
    original = {k: v.clone() for k, v in model.state_dict().items()}
    pruned, stats = prune_unstructured(model, 0.6)
    assert stats["sparsity"] == pytest.approx(0.6, abs=0.01)
    assert 0 < stats["overall_sparsity"] < stats["sparsity"]  # biases and norms stay dense
    assert stats["deflate_bytes_after"] < stats["deflate_bytes_before"]
    state = pruned.state_dict()
    assert {k: v.shape for k, v in state.items()} == {k: v.shape for k, v in original.items()}
    assert all(torch.equal(original[k], v) for k, v in model.state_dict().items())
    weights = [p.detach().abs().reshape(-1) for _, p in prunable_weights(pruned)]
    before = [p.detach().abs().reshape(-1) for _, p in prunable_weights(model)]
    zeroed = torch.cat([b[w == 0] for b, w in zip(before, weights, strict=True)])
    kept = torch.cat([w[w != 0] for w in weights])
    assert zeroed.max() <= kept.min()
    with torch.no_grad():
        pruned(torch.randn(2, *spec.input_shape))


def test_sparsity_out_of_range_is_refused() -> None:
    with pytest.raises(UsageError, match="sparsity"):
        prune_unstructured(SPECS["mlp"].build(), 1.0)
