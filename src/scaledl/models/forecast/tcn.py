"""`cnn` on a series: a temporal convolutional network (Bai et al. 2018).

Residual blocks of two dilated causal convolutions (dilation 2^level, left padding only, so a
step never sees the future), then a direct multi-step head on the last step's features: every
horizon step and target is one output of a linear layer, no recursion.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from scaledl.config.forecast import TCNForecastKnobs
from scaledl.models.forecast.base import ForecastBody, ForecastShape


class CausalConv(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.left = (kernel - 1) * dilation
        self.conv = nn.Conv1d(c_in, c_out, kernel, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (self.left, 0)))


class TemporalBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.conv1 = CausalConv(c_in, c_out, kernel, dilation)
        self.conv2 = CausalConv(c_out, c_out, kernel, dilation)
        self.drop = nn.Dropout(dropout)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(F.gelu(self.conv1(x)))
        h = self.drop(F.gelu(self.conv2(h)))
        return F.gelu(h + self.skip(x))


class TCNForecast(ForecastBody):
    def __init__(self, shape: ForecastShape, knobs: TCNForecastKnobs) -> None:
        super().__init__(shape, knobs.revin)
        blocks: list[nn.Module] = []
        width = shape.inputs
        for level, size in enumerate(knobs.channels):
            blocks.append(TemporalBlock(width, size, knobs.kernel_size, 2**level, knobs.dropout))
            width = size
        self.blocks = nn.Sequential(*blocks)
        self.last = min(knobs.last_steps, shape.lookback)
        self.head = nn.Linear(width * self.last, shape.horizon * shape.targets)

    def core(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(x.transpose(1, 2))[:, :, -self.last :]  # (N, C, last)
        out = self.head(h.flatten(1))
        return out.reshape(x.shape[0], self.shape.horizon, self.shape.targets)
