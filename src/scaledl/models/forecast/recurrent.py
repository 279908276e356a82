"""`rnn` on a series: GRU/LSTM over segments of the look-back, direct multi-step output.

The look-back is cut into segments of `segment` steps (the front padded with the first value
when it does not divide), each embedded by a linear layer and read by the recurrent layers as
one step (SegRNN, Lin et al. 2023): 336 hourly steps become 14 recurrent steps, which keeps
long look-backs trainable and fast. With `decoder: direct` the final hidden state maps to
every horizon step at once. With `decoder: pmf` (SegRNN's parallel multi-step forecasting) the
horizon is cut into segments too, and the same recurrent layers take one more step per output
segment, all in parallel from the final state, fed a learned embedding of the segment's
position and the channel's identity: each segment gets its own decoding instead of one wide
head. With `channel_independent` every channel is its own sequence sharing the weights (as in
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
        self.pmf = knobs.decoder == "pmf"
        if self.pmf:  # the knobs guarantee channel independence here
            self.out_steps = -(-shape.horizon // seg)
            half = knobs.hidden // 2
            # SegRNN initialises both from a standard normal: the decoder's only input
            self.position = nn.Parameter(torch.randn(self.out_steps, half))
            self.channel = nn.Parameter(torch.randn(shape.inputs, knobs.hidden - half))
            self.head = nn.Linear(knobs.hidden, seg)
        else:
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
        out, state = self.rnn(self.embed(seq))
        if self.pmf:
            y = self._decode_segments(state, n, c)
        else:
            y = self.head(self.drop(out[:, -1, :]))
        if self.select is None:
            return y.reshape(n, self.shape.horizon, self.shape.targets)
        return self.select(y.reshape(n, c, self.shape.horizon).transpose(1, 2))

    def _decode_segments(
        self, state: torch.Tensor | tuple[torch.Tensor, torch.Tensor], n: int, c: int
    ) -> torch.Tensor:
        """(N·C) final states → (N·C, horizon): one recurrent step per output segment."""
        m = self.out_steps
        queries = torch.cat(  # (C, m, hidden): the segment's position beside the channel's id
            [
                self.position.unsqueeze(0).expand(c, -1, -1),
                self.channel.unsqueeze(1).expand(-1, m, -1),
            ],
            dim=-1,
        )
        queries = queries.unsqueeze(0).expand(n, -1, -1, -1).reshape(-1, 1, queries.shape[-1])

        def repeat(h: torch.Tensor) -> torch.Tensor:  # (layers, N·C, d) → (layers, N·C·m, d)
            return h.unsqueeze(2).expand(-1, -1, m, -1).reshape(h.shape[0], -1, h.shape[-1])

        start = tuple(repeat(h) for h in state) if isinstance(state, tuple) else repeat(state)
        out, _ = self.rnn(queries, start)
        y = self.head(self.drop(out[:, -1, :]))  # (N·C·m, segment)
        return y.reshape(-1, m * self.segment)[:, : self.shape.horizon]
