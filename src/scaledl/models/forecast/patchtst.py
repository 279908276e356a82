"""`transformer` on a series: PatchTST (Nie et al. 2023).

Each channel's look-back (end padded with `patch_stride` copies of the last value) is cut into
overlapping patches of `patch_len` steps; a patch is one token (linear embedding + learned
position), a pre-norm transformer encoder (the same blocks as the transformer family, so heads
and feed-forward widths can be pruned per layer) reads the tokens, and a linear head maps all
of them to the horizon. Channel-independent: every channel is its own sequence sharing the
weights. Patches are gathered with a fixed index table, which exports to a plain ONNX Gather.
"""

from __future__ import annotations

import torch
from torch import nn

from scaledl.config.forecast import PatchTSTKnobs
from scaledl.models.forecast.base import ChannelsToTargets, ForecastBody, ForecastShape
from scaledl.models.transformer import Block


def patch_index(lookback: int, patch_len: int, stride: int) -> torch.Tensor:
    """(patches, patch_len) positions into the look-back padded at the end by `stride`."""
    padded = lookback + stride
    if patch_len > padded:
        raise ValueError(f"patch_len {patch_len} is longer than the padded look-back {padded}")
    starts = torch.arange(0, padded - patch_len + 1, stride)
    return starts[:, None] + torch.arange(patch_len)[None, :]


class PatchTST(ForecastBody):
    patches: torch.Tensor

    def __init__(self, shape: ForecastShape, knobs: PatchTSTKnobs) -> None:
        super().__init__(shape, knobs.revin)
        index = patch_index(shape.lookback, knobs.patch_len, knobs.patch_stride)
        self.register_buffer("patches", index.reshape(-1))
        self.num_patches, self.patch_len = int(index.shape[0]), knobs.patch_len
        self.stride = knobs.patch_stride
        d = knobs.d_model
        self.embed = nn.Linear(knobs.patch_len, d)
        self.pos = nn.Parameter(torch.empty(1, self.num_patches, d).uniform_(-0.02, 0.02))
        self.drop = nn.Dropout(knobs.dropout)
        head_dim = d // knobs.heads
        self.blocks = nn.Sequential(
            *(Block(d, heads, head_dim, ff, knobs.dropout) for heads, ff in knobs.per_layer())
        )
        self.norm = nn.LayerNorm(d)
        self.head_drop = nn.Dropout(knobs.head_dropout)
        self.head = nn.Linear(self.num_patches * d, shape.horizon)
        self.select = ChannelsToTargets(shape)

    def core(self, x: torch.Tensor) -> torch.Tensor:
        n, lookback, c = x.shape
        series = x.transpose(1, 2).reshape(-1, lookback)  # (N·C, L)
        series = torch.cat([series, series[:, -1:].expand(-1, self.stride)], dim=1)
        tokens = series.index_select(1, self.patches)
        tokens = tokens.reshape(-1, self.num_patches, self.patch_len)
        h = self.blocks(self.drop(self.embed(tokens) + self.pos))
        h = self.norm(h).reshape(n, c, -1)
        y = self.head(self.head_drop(h))  # (N, C, H)
        return self.select(y.transpose(1, 2))
