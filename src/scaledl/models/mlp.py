"""Feedforward network: flatten → [Linear → (BatchNorm) → activation → (Dropout)] × N → head."""

from __future__ import annotations

import math

import torch
from torch import nn

from scaledl.config.models import MLPKnobs
from scaledl.models.registry import register_family

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}


class MLP(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_outputs: int, knobs: MLPKnobs) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for size in knobs.hidden:
            layers.append(nn.Linear(width, size))
            if knobs.batch_norm:
                layers.append(nn.BatchNorm1d(size))
            layers.append(ACTIVATIONS[knobs.activation]())
            if knobs.dropout:
                layers.append(nn.Dropout(knobs.dropout))
            width = size
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register_family("mlp", MLPKnobs)
def build_mlp(input_shape: tuple[int, ...], num_outputs: int, knobs: MLPKnobs) -> nn.Module:
    return MLP(input_shape, num_outputs, knobs)
