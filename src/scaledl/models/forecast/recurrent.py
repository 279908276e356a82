"""`rnn` on a series: GRU/LSTM over segments of the look-back, direct multi-step output.

The look-back is cut into segments of `segment` steps (the front padded with the first value
when it does not divide), each embedded by a linear layer and read by the recurrent layers as
one step (SegRNN, Lin et al. 2023): 336 hourly steps become 14 recurrent steps, which keeps
long look-backs trainable and fast. The final hidden state maps to every horizon step at once.
With `channel_independent` every channel is its own sequence sharing the weights (as in
PatchTST); otherwise one sequence carries all channels.
"""

from __future__ import annotations

import torch
from torch import nn

from scaledl.config.forecast import RNNForecastKnobs
from scaledl.models.forecast.base import ChannelsToTargets, ForecastBody, ForecastShape


class RNNForecast(ForecastBody):
    def __init__(self, shape: ForecastShape, knobs: RNNForecastKnobs) -> None:
        super().__init__(shape, knobs.revin)
        seg = min(knobs.segment, shape.lookback)
        self.segment = seg
        self.steps = -(-shape.lookback // seg)
        self.pad = self.steps * seg - shape.lookback
        self.ci = knobs.channel_independent
        width = seg if self.ci else seg * shape.inputs
        self.embed = nn.Sequential(nn.Linear(width, knobs.hidden), nn.ReLU())
        cell = nn.GRU if knobs.cell == "gru" else nn.LSTM
        self.rnn = cell(
            knobs.hidden,
            knobs.hidden,
            num_layers=knobs.layers,
            batch_first=True,
            dropout=knobs.dropout if knobs.layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(knobs.dropout) if knobs.dropout else nn.Identity()
        outputs = shape.horizon if self.ci else shape.horizon * shape.targets
        self.head = nn.Linear(knobs.hidden, outputs)
        self.select = ChannelsToTargets(shape) if self.ci else None

    def core(self, x: torch.Tensor) -> torch.Tensor:
        n, _, c = x.shape
        if self.pad:
            x = torch.cat([x[:, :1, :].expand(-1, self.pad, -1), x], dim=1)
        if self.ci:  # (N, L, C) → (N·C, steps, segment)
            seq = x.transpose(1, 2).reshape(-1, self.steps, self.segment)
        else:  # (N, steps, segment·C)
            seq = x.reshape(n, self.steps, self.segment * c)
        out, _ = self.rnn(self.embed(seq))
        y = self.head(self.drop(out[:, -1, :]))
        if self.select is None:
            return y.reshape(n, self.shape.horizon, self.shape.targets)
        return self.select(y.reshape(n, c, self.shape.horizon).transpose(1, 2))
