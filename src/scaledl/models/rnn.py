"""Recurrent network: stacked GRU or LSTM layers over a sequence, head on the final state.

Images (C, H, W) are read as H steps of C·W features (rows); tables (F,) as F steps of one
feature; sequences (T, F) as they are. Layers are separate single-layer modules so each can
have its own width (structured pruning removes hidden units per layer).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from scaledl.config.models import RNNKnobs
from scaledl.models.registry import register_family


def sequence_shape(input_shape: tuple[int, ...]) -> tuple[int, int]:
    """(steps, features per step) for an input sample shape."""
    if len(input_shape) == 1:
        return input_shape[0], 1
    if len(input_shape) == 2:
        return input_shape[0], input_shape[1]
    if len(input_shape) == 3:
        c, h, w = input_shape
        return h, c * w
    raise ValueError(f"rnn cannot read sample shape {input_shape} as a sequence")


def as_sequence(x: torch.Tensor, input_shape: tuple[int, ...]) -> torch.Tensor:
    steps, feats = sequence_shape(input_shape)
    if len(input_shape) == 3:  # (N, C, H, W) → (N, H, C·W)
        return x.permute(0, 2, 1, 3).reshape(x.shape[0], steps, feats)
    return x.reshape(x.shape[0], steps, feats)


class RNN(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_outputs: int, knobs: RNNKnobs) -> None:
        super().__init__()
        self.input_shape = tuple(input_shape)
        _, feats = sequence_shape(self.input_shape)
        cell = nn.GRU if knobs.cell == "gru" else nn.LSTM
        directions = 2 if knobs.bidirectional else 1
        self.rnns = nn.ModuleList()
        width = feats
        for size in knobs.layer_sizes():
            self.rnns.append(cell(width, size, batch_first=True, bidirectional=knobs.bidirectional))
            width = size * directions
        self.dropout = nn.Dropout(knobs.dropout) if knobs.dropout else nn.Identity()
        self.head = nn.Linear(width, num_outputs)
        self.steps = math.prod(self.input_shape) // feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = as_sequence(x, self.input_shape)
        for i, rnn in enumerate(self.rnns):
            if i:
                seq = self.dropout(seq)
            seq, _ = rnn(seq)
        # Final state: last step of the forward direction, first step of the backward one.
        hidden = self.rnns[-1].hidden_size
        last = seq[:, -1, :hidden]
        if self.rnns[-1].bidirectional:
            last = torch.cat([last, seq[:, 0, hidden:]], dim=1)
        return self.head(last)


@register_family("rnn", RNNKnobs)
def build_rnn(input_shape: tuple[int, ...], num_outputs: int, knobs: RNNKnobs) -> nn.Module:
    return RNN(input_shape, num_outputs, knobs)
