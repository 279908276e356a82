"""What every forecasting body shares: the window geometry, instance normalization (RevIN) and
picking the target channels out of a channel-independent forecast.

A forecaster is the series front-end (scaling with the training period's statistics, inside the
graph) around a body: (N, lookback, inputs) standardised → (N, horizon, targets) standardised;
the front-end turns the forecast back into original units.
"""

from __future__ import annotations

import torch
from torch import nn

from scaledl.modalities.series.form import ForecastShape

EPS = 1e-5


class Forecaster(nn.Module):
    """scaling → body → inverse scaling: raw look-back in, forecast in original units out."""

    def __init__(self, scaling: nn.Module, body: nn.Module) -> None:
        super().__init__()
        self.scaling = scaling
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scaling.inverse(self.body(self.scaling(x)))  # type: ignore[operator]


class ChannelsToTargets(nn.Module):
    """(N, H, inputs) per-channel forecasts → (N, H, targets): the target channels when every
    target is an input, else a learned mix of the channels."""

    index: torch.Tensor

    def __init__(self, shape: ForecastShape) -> None:
        super().__init__()
        self.identity = shape.identity_targets
        self.mix: nn.Module | None = None
        if not shape.targets_are_inputs:
            self.mix = nn.Linear(shape.inputs, shape.targets)
        self.register_buffer("index", torch.tensor(shape.target_index, dtype=torch.long))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        if self.identity:
            return y
        if self.mix is not None:
            return self.mix(y)
        return y.index_select(2, self.index)


class ForecastBody(nn.Module):
    """Base of the four families' bodies: optional instance normalization around `core`.

    RevIN (Kim et al. 2022), without its affine part: each window is centred and scaled by its
    own mean and standard deviation per channel, and the forecast is put back on that level —
    what makes level shifts between the training period and the test period harmless.
    """

    revin_index: torch.Tensor
    revin_keep: torch.Tensor

    def __init__(self, shape: ForecastShape, revin: bool) -> None:
        super().__init__()
        self.shape = shape
        self.revin = revin
        index = [max(i, 0) for i in shape.target_index]
        self.register_buffer("revin_index", torch.tensor(index, dtype=torch.long))
        keep = [1.0 if i >= 0 else 0.0 for i in shape.target_index]
        self.register_buffer("revin_keep", torch.tensor(keep).reshape(1, 1, -1))

    def core(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.revin:
            return self.core(x)
        mean = x.mean(dim=1, keepdim=True)
        std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + EPS)
        y = self.core((x - mean) / std)
        if self.shape.identity_targets:
            return y * std + mean
        keep = self.revin_keep
        t_mean = mean.index_select(2, self.revin_index) * keep
        t_std = std.index_select(2, self.revin_index) * keep + (1.0 - keep)
        return y * t_std + t_mean
