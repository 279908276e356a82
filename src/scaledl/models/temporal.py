"""The `cnn` family on sequences (steps, features): 1-D convolutions along the steps, with the
features as channels (TC-ResNet's layout for keyword spotting).

A spectrogram read this way keeps every mel band's identity (a band is a channel, not a
position the filters slide over), and the pooling between stages widens the receptive field
along time cheaply. Same knobs and module names as the image CNN (`stages`, `pool`, `dropout`,
`head`; `widths` from structured pruning), so pruning, slimming and quantization treat both
alike. Stages downsample by max-pools of 2 (`downsample`) while at least 2 steps remain.
"""

from __future__ import annotations

import torch
from torch import nn

from scaledl.models.cnn import CNNKnobs, build_stages


class TemporalCNN(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_outputs: int, knobs: CNNKnobs) -> None:
        super().__init__()
        if len(input_shape) != 2:
            raise ValueError(f"a temporal cnn reads (steps, features); got {input_shape}")
        steps, cin = input_shape
        image_only = [k for k in ("stem", "tta") if getattr(knobs, k) != "none"]
        if image_only:
            raise ValueError(f"cnn knobs {image_only} apply to images only, not sequences")
        self.stages, cin = build_stages(knobs, cin, steps, dims=1)
        pool = nn.AdaptiveAvgPool1d(1) if knobs.global_pool == "avg" else nn.AdaptiveMaxPool1d(1)
        self.pool = nn.Sequential(pool, nn.Flatten())
        self.dropout = nn.Dropout(knobs.dropout) if knobs.dropout else nn.Identity()
        self.head = nn.Linear(cin, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.pool(self.stages(x.transpose(1, 2)))))
