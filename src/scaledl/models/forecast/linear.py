"""`mlp` on a series: a linear map from each channel's look-back to its horizon (DLinear).

With `decomposition` the window is split into a trend (moving average, edges padded with the
first/last value) and the remainder, each mapped by its own linear layer (DLinear, Zeng et al.
2023); with `revin` (RLinear) each window is normalized by its own statistics first. `hidden`
adds hidden layers (a per-channel MLP); `individual` gives every channel its own weights.
"""

from __future__ import annotations

import torch
from torch import nn

from scaledl.config.forecast import LinearForecastKnobs
from scaledl.models.forecast.base import ChannelsToTargets, ForecastBody, ForecastShape


class MovingAverage(nn.Module):
    """Centred moving average over time, the series' edges repeated (DLinear's trend)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width
        self.pad = (width - 1) // 2
        self.pool = nn.AvgPool1d(width, stride=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, L, C)
        if self.width == 1:
            return x
        front = x[:, :1, :].expand(-1, self.pad, -1)
        back = x[:, -1:, :].expand(-1, self.pad, -1)
        padded = torch.cat([front, x, back], dim=1)
        return self.pool(padded.transpose(1, 2)).transpose(1, 2)


def time_map(lookback: int, horizon: int, hidden: list[int], dropout: float) -> nn.Module:
    if not hidden:
        return nn.Linear(lookback, horizon)
    layers: list[nn.Module] = []
    width = lookback
    for size in hidden:
        layers += [nn.Linear(width, size), nn.GELU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = size
    layers.append(nn.Linear(width, horizon))
    return nn.Sequential(*layers)


class IndividualLinear(nn.Module):
    """One (lookback → horizon) linear map per channel, as a batched matmul."""

    def __init__(self, channels: int, lookback: int, horizon: int) -> None:
        super().__init__()
        bound = 1.0 / lookback**0.5
        self.weight = nn.Parameter(torch.empty(channels, lookback, horizon).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(channels, horizon))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, L) → (N, C, H)
        return torch.einsum("ncl,clh->nch", x, self.weight) + self.bias


class LinearForecast(ForecastBody):
    def __init__(self, shape: ForecastShape, knobs: LinearForecastKnobs) -> None:
        super().__init__(shape, knobs.revin)
        self.decompose = MovingAverage(knobs.moving_average) if knobs.decomposition else None
        self.seasonal = self._map(shape, knobs)
        self.trend = self._map(shape, knobs) if knobs.decomposition else None
        self.drop = nn.Dropout(knobs.dropout) if knobs.dropout else nn.Identity()
        self.select = ChannelsToTargets(shape)

    @staticmethod
    def _map(shape: ForecastShape, knobs: LinearForecastKnobs) -> nn.Module:
        if knobs.individual:
            return IndividualLinear(shape.inputs, shape.lookback, shape.horizon)
        return time_map(shape.lookback, shape.horizon, knobs.hidden, knobs.dropout)

    def core(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(x)
        if self.decompose is not None and self.trend is not None:
            trend = self.decompose(x)
            out = self.seasonal((x - trend).transpose(1, 2)) + self.trend(trend.transpose(1, 2))
        else:
            out = self.seasonal(x.transpose(1, 2))
        return self.select(out.transpose(1, 2))  # (N, C, H) → (N, H, targets)
