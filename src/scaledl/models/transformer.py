"""Transformer encoder (pre-norm) with a token embedding for every input kind.

Images are cut into `patch_size` patches (a strided convolution), sequences project each step,
tables embed each feature as its own token. Attention is written out (not nn.MultiheadAttention)
so each layer can keep its own number of heads and feed-forward width after pruning, and so the
ONNX graph keeps a symbolic batch dimension.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from scaledl.config.models import TransformerKnobs
from scaledl.models.registry import register_family


class Attention(nn.Module):
    def __init__(self, d_model: int, heads: int, head_dim: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.qkv = nn.Linear(d_model, 3 * heads * head_dim)
        self.out = nn.Linear(heads * head_dim, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(self.head_dim))
        weights = self.drop(torch.softmax(scores, dim=-1))
        mixed = torch.matmul(weights, v).transpose(1, 2).reshape(b, t, self.heads * self.head_dim)
        return self.out(mixed)


class Block(nn.Module):
    def __init__(self, d_model: int, heads: int, head_dim: int, ff: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = Attention(d_model, heads, head_dim, dropout)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(
            nn.Linear(d_model, ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff, d_model)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x)))
        return x + self.drop(self.ff(self.norm2(x)))


class FeatureTokens(nn.Module):
    """Each table feature becomes a token: value · w_f + b_f."""

    def __init__(self, features: int, d_model: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(features, d_model) * 0.02)
        self.bias = nn.Parameter(torch.zeros(features, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(-1) * self.weight + self.bias


class PatchTokens(nn.Module):
    def __init__(self, channels: int, d_model: int, patch: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(channels, d_model, patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Transformer(nn.Module):
    def __init__(
        self, input_shape: tuple[int, ...], num_outputs: int, knobs: TransformerKnobs
    ) -> None:
        super().__init__()
        d = knobs.d_model
        self.embed: nn.Module
        if len(input_shape) == 3:
            c, h, w = input_shape
            p = knobs.patch_size
            if h % p or w % p:
                raise ValueError(f"image {h}×{w} is not divisible by patch_size {p}")
            self.embed, tokens = PatchTokens(c, d, p), (h // p) * (w // p)
        elif len(input_shape) == 2:
            self.embed, tokens = nn.Linear(input_shape[1], d), input_shape[0]
        elif len(input_shape) == 1:
            self.embed, tokens = FeatureTokens(input_shape[0], d), input_shape[0]
        else:
            raise ValueError(f"transformer cannot embed sample shape {input_shape}")
        self.pos = nn.Parameter(torch.randn(1, tokens, d) * 0.02)
        hd = knobs.resolved_head_dim()
        self.blocks = nn.Sequential(
            *(Block(d, heads, hd, ff, knobs.dropout) for heads, ff in knobs.per_layer())
        )
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.blocks(self.embed(x) + self.pos)
        return self.head(self.norm(tokens.mean(dim=1)))


@register_family("transformer", TransformerKnobs)
def build_transformer(
    input_shape: tuple[int, ...], num_outputs: int, knobs: TransformerKnobs
) -> nn.Module:
    return Transformer(input_shape, num_outputs, knobs)
