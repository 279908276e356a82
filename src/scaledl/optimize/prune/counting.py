"""Parameter and multiply-accumulate counts of a built-in family model, for one sample.

MACs count the matrix work (convolutions, linear layers, recurrent gates, attention products);
normalization, activations and element-wise additions are left out, as is customary.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _conv_macs(module: nn.Conv2d | nn.Conv1d, out: torch.Tensor) -> int:
    per_output = (module.in_channels // module.groups) * math.prod(module.kernel_size)
    return out.numel() * per_output


def _linear_macs(module: nn.Linear, out: torch.Tensor) -> int:
    return out.numel() * module.in_features


def _recurrent_macs(module: nn.RNNBase, x: torch.Tensor) -> int:
    gates = {"GRU": 3, "LSTM": 4}.get(module.mode, 1)
    steps = x.shape[1] if module.batch_first else x.shape[0]
    batch = x.shape[0] if module.batch_first else x.shape[1]
    per_step = gates * module.hidden_size * (module.input_size + module.hidden_size)
    directions = 2 if module.bidirectional else 1
    return batch * steps * per_step * directions


TYPICAL_TOKENS = 32  # a text of typical length, for models that read token ids


def example_input(input_shape: tuple[int, ...] | list[int], frontend: Any = None) -> torch.Tensor:
    """One sample of the graph input: zeros of `input_shape`, or for a text front-end (token
    ids) a text of TYPICAL_TOKENS ordinary tokens."""
    if isinstance(frontend, dict) and "vocab_size" in frontend:
        token = min(3, int(frontend["vocab_size"]) - 1)
        return torch.full((1, TYPICAL_TOKENS), token, dtype=torch.long)
    return torch.zeros(1, *input_shape)


def count_macs(
    model: nn.Module, input_shape: tuple[int, ...] | list[int], frontend: Any = None
) -> int:
    """MACs of one forward pass on a single sample of `input_shape` (batch excluded); with a
    text front-end, on a text of TYPICAL_TOKENS tokens."""
    from scaledl.models.text import MaskedAttention
    from scaledl.models.transformer import Attention

    total = 0

    def hook(module: nn.Module, inputs: tuple[Any, ...], out: Any) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d | nn.Conv1d):
            total += _conv_macs(module, out)
        elif isinstance(module, nn.Linear):
            total += _linear_macs(module, out)
        elif isinstance(module, nn.RNNBase):
            total += _recurrent_macs(module, inputs[0])
        elif isinstance(module, nn.Conv1d):
            total += out.numel() * (module.in_channels // module.groups) * module.kernel_size[0]
        elif isinstance(module, Attention | MaskedAttention):
            b, t = inputs[0].shape[:2]
            total += 2 * b * module.heads * t * t * module.head_dim  # QKᵀ and weights·V

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(
            m, nn.Conv2d | nn.Conv1d | nn.Linear | nn.RNNBase | Attention | MaskedAttention
        )
    ]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(example_input(input_shape, frontend))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return int(total)
