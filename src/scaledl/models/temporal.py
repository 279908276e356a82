"""The `cnn` family on sequences (steps, features): 1-D convolutions along the steps, with the
features as channels (TC-ResNet's layout for keyword spotting).

A spectrogram read this way keeps every mel band's identity (a band is a channel, not a
position the filters slide over), and the pooling between stages widens the receptive field
along time cheaply. Same knobs and module names as the image CNN (`stages`, `pool`, `dropout`,
`head`; `widths` from structured pruning), so pruning, slimming and quantization treat both
alike. Stages after the first start with a max-pool of 2 while at least 2 steps remain.
"""

from __future__ import annotations

import torch
from torch import nn

from scaledl.models.cnn import CNNKnobs, ResidualBlock, conv_bn_relu


class TemporalCNN(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_outputs: int, knobs: CNNKnobs) -> None:
        super().__init__()
        if len(input_shape) != 2:
            raise ValueError(f"a temporal cnn reads (steps, features); got {input_shape}")
        steps, cin = input_shape
        k, bn = knobs.kernel_size, knobs.batch_norm
        stages: list[nn.Module] = []
        for s, widths in enumerate(knobs.stage_widths()):
            layers: list[nn.Module] = []
            if s > 0 and steps >= 2:
                layers.append(nn.MaxPool1d(2))
                steps //= 2
            layers.append(conv_bn_relu(cin, widths[0], k, bn, dims=1))
            cin = widths[0]
            rest = widths[1:]
            if knobs.residual:
                while len(rest) >= 2:
                    if rest[1] != cin:
                        raise ValueError("residual blocks must return the stage width")
                    layers.append(ResidualBlock(cin, rest[0], k, bn, dims=1))
                    rest = rest[2:]
            for width in rest:
                layers.append(conv_bn_relu(cin, width, k, bn, dims=1))
                cin = width
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        pool = nn.AdaptiveAvgPool1d(1) if knobs.global_pool == "avg" else nn.AdaptiveMaxPool1d(1)
        self.pool = nn.Sequential(pool, nn.Flatten())
        self.dropout = nn.Dropout(knobs.dropout) if knobs.dropout else nn.Identity()
        self.head = nn.Linear(cin, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.pool(self.stages(x.transpose(1, 2)))))
