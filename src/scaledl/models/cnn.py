"""Convolutional network: stages of conv → BN → ReLU, optional residual blocks, pooled head.

Stage s has `depth` (or `depth[s]`) convolutions of `channels[s]` filters (or the exact
per-conv counts in `widths`, which structured pruning writes). With `residual`, the
convolutions after a stage's first are paired into blocks with an identity shortcut. Stages
after the first start with a 2×2 max-pool while the feature map is at least 2×2. Inputs of
shape (steps, features) get the same network in 1-D (`models.temporal`).
"""

from __future__ import annotations

import torch
from torch import nn

from scaledl.config.models import CNNKnobs
from scaledl.models.registry import register_family


def conv_bn_relu(
    cin: int, cout: int, k: int, bn: bool, relu: bool = True, dims: int = 2
) -> nn.Sequential:
    """Conv (2-D on images, 1-D along the steps of a sequence) → BN → ReLU."""
    conv, norm = (nn.Conv2d, nn.BatchNorm2d) if dims == 2 else (nn.Conv1d, nn.BatchNorm1d)
    layers: list[nn.Module] = [conv(cin, cout, k, padding=k // 2, bias=not bn)]
    if bn:
        layers.append(norm(cout))
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, mid: int, k: int, bn: bool, dims: int = 2) -> None:
        super().__init__()
        self.conv1 = conv_bn_relu(channels, mid, k, bn, dims=dims)
        self.conv2 = conv_bn_relu(mid, channels, k, bn, relu=False, dims=dims)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.conv2(self.conv1(x)))


class CNN(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_outputs: int, knobs: CNNKnobs) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"cnn needs image inputs (C, H, W); got sample shape {input_shape}")
        cin, h, w = input_shape
        k, bn = knobs.kernel_size, knobs.batch_norm
        stages: list[nn.Module] = []
        for s, widths in enumerate(knobs.stage_widths()):
            layers: list[nn.Module] = []
            if s > 0 and min(h, w) >= 2:
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            layers.append(conv_bn_relu(cin, widths[0], k, bn))
            cin = widths[0]
            rest = widths[1:]
            if knobs.residual:
                while len(rest) >= 2:
                    if rest[1] != cin:
                        raise ValueError("residual blocks must return the stage width")
                    layers.append(ResidualBlock(cin, rest[0], k, bn))
                    rest = rest[2:]
            for width in rest:
                layers.append(conv_bn_relu(cin, width, k, bn))
                cin = width
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        pool = nn.AdaptiveAvgPool2d(1) if knobs.global_pool == "avg" else nn.AdaptiveMaxPool2d(1)
        self.pool = nn.Sequential(pool, nn.Flatten())
        self.dropout = nn.Dropout(knobs.dropout) if knobs.dropout else nn.Identity()
        self.head = nn.Linear(cin, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.pool(self.stages(x))))


@register_family("cnn", CNNKnobs)
def build_cnn(input_shape: tuple[int, ...], num_outputs: int, knobs: CNNKnobs) -> nn.Module:
    if len(input_shape) == 2:  # (steps, features): a spectrogram's frames, a sequence
        from scaledl.models.temporal import TemporalCNN

        return TemporalCNN(input_shape, num_outputs, knobs)
    return CNN(input_shape, num_outputs, knobs)
