"""The four families on token ids: (N, L) int64 → (N, outputs).

Every model embeds ids with a table whose padding row is zero and reads only the real tokens
(`ids != pad_id`), so a text's output does not depend on how far its batch was padded — the
server pads each batch to its longest text, training and evaluation likewise:

- `mlp` — fastText-like: the masked mean of token (and hashed bigram) embeddings, then hidden
  layers;
- `cnn` — 1-D convolutions of several widths over the embeddings (Kim, 2014), ReLU, max over
  the real positions;
- `rnn` — GRU/LSTM layers; the backward direction reads each text reversed within its own
  length (a gather, exportable to ONNX), so padding never enters a recurrence; max/mean pooling;
- `transformer` — pre-norm encoder with learned positions, attention masked to real tokens,
  mean or [CLS] pooling. Its blocks keep the image transformer's attribute names (`attn.qkv`,
  `attn.out`, `ff`), so head and feed-forward pruning apply unchanged.

Reached through the usual family names: a text package's `model.json` carries the text
front-end config, and the text modality builds these instead of the image/table families.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from scaledl.config.text_models import (
    TextCNNKnobs,
    TextMLPKnobs,
    TextRNNKnobs,
    TextTransformerKnobs,
    validate_text_knobs,
)

BIGRAM_MULTIPLIER = 1_000_003  # a prime: (a · P + b) mod buckets spreads bigrams evenly


class TokenEmbedding(nn.Module):
    """ids → (embeddings (N, L, D), mask (N, L) bool of real tokens)."""

    def __init__(self, vocab: int, dim: int, pad_id: int, dropout: float) -> None:
        super().__init__()
        self.pad_id = pad_id
        self.embed = nn.Embedding(vocab, dim, padding_idx=pad_id)
        nn.init.normal_(self.embed.weight, std=dim**-0.5)
        with torch.no_grad():
            self.embed.weight[pad_id].zero_()
        self.drop = nn.Dropout(dropout)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.drop(self.embed(ids)), ids != self.pad_id


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weight = mask.unsqueeze(-1).to(x.dtype)
    return (x * weight).sum(1) / weight.sum(1).clamp(min=1.0)


class TextMLP(nn.Module):
    def __init__(self, vocab: int, pad_id: int, outputs: int, knobs: TextMLPKnobs) -> None:
        super().__init__()
        d = knobs.embed_dim
        self.tokens = TokenEmbedding(vocab, d, pad_id, knobs.embed_dropout)
        self.buckets = knobs.bigram_buckets
        self.bigrams = nn.Embedding(knobs.bigram_buckets, d) if knobs.ngrams == 2 else None
        if self.bigrams is not None:
            nn.init.normal_(self.bigrams.weight, std=d**-0.5)
        layers: list[nn.Module] = []
        width = d
        for size in knobs.hidden:
            layers += [nn.Linear(width, size), nn.GELU(), nn.Dropout(knobs.dropout)]
            width = size
        self.hidden = nn.Sequential(*layers)
        self.head = nn.Linear(width, outputs)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        emb, mask = self.tokens(ids)
        pooled = masked_mean(emb, mask)
        if self.bigrams is not None and ids.shape[1] > 1:
            pair = (ids[:, :-1] * BIGRAM_MULTIPLIER + ids[:, 1:]) % self.buckets
            pair_mask = mask[:, 1:]  # the second token is real, so both are
            pooled = pooled + masked_mean(self.bigrams(pair), pair_mask)
        return self.head(self.hidden(pooled))


class TextCNN(nn.Module):
    def __init__(self, vocab: int, pad_id: int, outputs: int, knobs: TextCNNKnobs) -> None:
        super().__init__()
        d = knobs.embed_dim
        self.tokens = TokenEmbedding(vocab, d, pad_id, knobs.embed_dropout)
        self.convs = nn.ModuleList(
            nn.Conv1d(d, c, k, padding=k // 2)
            for k, c in zip(knobs.kernel_sizes, knobs.per_width(), strict=True)
        )
        self.drop = nn.Dropout(knobs.dropout)
        self.head = nn.Linear(sum(knobs.per_width()), outputs)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        emb, mask = self.tokens(ids)
        x = emb.transpose(1, 2)
        keep = mask.unsqueeze(1).to(x.dtype)
        length = ids.shape[1]
        # ReLU outputs are ≥ 0, so zeroing padded positions leaves the max over real ones
        pooled = [(torch.relu(conv(x))[..., :length] * keep).amax(dim=-1) for conv in self.convs]
        return self.head(self.drop(torch.cat(pooled, dim=1)))


def reverse_within_length(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each row's real steps in reverse order, its padding left where it is (its own inverse)."""
    length = mask.sum(dim=1, keepdim=True)
    steps = torch.arange(x.shape[1], device=x.device).unsqueeze(0)
    index = torch.where(steps < length, length - 1 - steps, steps)
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[2]))


class TextRNN(nn.Module):
    def __init__(self, vocab: int, pad_id: int, outputs: int, knobs: TextRNNKnobs) -> None:
        super().__init__()
        self.tokens = TokenEmbedding(vocab, knobs.embed_dim, pad_id, knobs.embed_dropout)
        cell = nn.GRU if knobs.cell == "gru" else nn.LSTM
        self.bidirectional = knobs.bidirectional
        self.forward_rnns = nn.ModuleList()
        self.backward_rnns = nn.ModuleList()
        width = knobs.embed_dim
        for size in knobs.layer_sizes():
            self.forward_rnns.append(cell(width, size, batch_first=True))
            if knobs.bidirectional:
                self.backward_rnns.append(cell(width, size, batch_first=True))
            width = size * (2 if knobs.bidirectional else 1)
        self.pooling = knobs.pooling
        self.drop = nn.Dropout(knobs.dropout)
        self.head = nn.Linear(width * (2 if knobs.pooling == "max+mean" else 1), outputs)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        seq, mask = self.tokens(ids)
        for i, rnn in enumerate(self.forward_rnns):
            if i:
                seq = self.drop(seq)
            out, _ = rnn(seq)
            if self.bidirectional:
                back, _ = self.backward_rnns[i](reverse_within_length(seq, mask))
                out = torch.cat([out, reverse_within_length(back, mask)], dim=-1)
            seq = out
        parts = []
        if "max" in self.pooling:  # outputs lie in (−1, 1): −2 never wins the max
            parts.append(seq.masked_fill(~mask.unsqueeze(-1), -2.0).amax(dim=1))
        if "mean" in self.pooling:
            parts.append(masked_mean(seq, mask))
        return self.head(self.drop(torch.cat(parts, dim=-1)))


class MaskedAttention(nn.Module):
    """Multi-head self-attention over real tokens (same layout as the image transformer's)."""

    def __init__(self, d_model: int, heads: int, head_dim: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.qkv = nn.Linear(d_model, 3 * heads * head_dim)
        self.out = nn.Linear(heads * head_dim, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(self.head_dim)) + bias
        weights = self.drop(torch.softmax(scores, dim=-1))
        mixed = torch.matmul(weights, v).transpose(1, 2).reshape(b, t, self.heads * self.head_dim)
        return self.out(mixed)


class MaskedBlock(nn.Module):
    def __init__(self, d_model: int, heads: int, head_dim: int, ff: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = MaskedAttention(d_model, heads, head_dim, dropout)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(
            nn.Linear(d_model, ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff, d_model)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x), bias))
        return x + self.drop(self.ff(self.norm2(x)))


class TextTransformer(nn.Module):
    def __init__(
        self, vocab: int, pad_id: int, outputs: int, knobs: TextTransformerKnobs, positions: int
    ) -> None:
        super().__init__()
        d = knobs.embed_dim
        self.tokens = TokenEmbedding(vocab, d, pad_id, knobs.embed_dropout)
        self.pos = nn.Parameter(torch.randn(1, positions, d) * 0.02)
        hd = knobs.head_dim or d // knobs.heads
        self.blocks = nn.ModuleList(
            MaskedBlock(d, heads, hd, ff, knobs.dropout) for heads, ff in knobs.per_layer()
        )
        self.norm = nn.LayerNorm(d)
        self.pooling = knobs.pooling
        self.drop = nn.Dropout(knobs.dropout)
        self.head = nn.Linear(d, outputs)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        emb, mask = self.tokens(ids)
        x = emb + self.pos[:, : ids.shape[1]]
        bias = (~mask).to(x.dtype).mul(-1e4)[:, None, None, :]  # keys that are padding
        for block in self.blocks:
            x = block(x, bias)
        x = self.norm(x)
        pooled = x[:, 0] if self.pooling == "cls" else masked_mean(x, mask)
        return self.head(self.drop(pooled))


def create_text_model(
    family: str, vocab: int, pad_id: int, max_length: int, outputs: int, knobs: dict[str, Any]
) -> nn.Module:
    """A text model of `family` for a vocabulary of `vocab` ids."""
    validated = validate_text_knobs(family, knobs)
    if isinstance(validated, TextMLPKnobs):
        return TextMLP(vocab, pad_id, outputs, validated)
    if isinstance(validated, TextCNNKnobs):
        return TextCNN(vocab, pad_id, outputs, validated)
    if isinstance(validated, TextRNNKnobs):
        return TextRNN(vocab, pad_id, outputs, validated)
    assert isinstance(validated, TextTransformerKnobs)
    return TextTransformer(vocab, pad_id, outputs, validated, max_length)


def build_from_frontend(
    frontend: dict[str, Any], family: str, outputs: int, knobs: dict[str, Any]
) -> nn.Module:
    """The text model a package's `model.json` describes (its text front-end config)."""
    from scaledl.errors import ModelError

    try:
        vocab, pad = int(frontend["vocab_size"]), int(frontend["pad_id"])
        max_length = int(frontend["max_length"])
    except (KeyError, TypeError, ValueError):
        raise ModelError(
            "model.json: a text front-end needs vocab_size, pad_id and max_length"
        ) from None
    if not (1 <= vocab <= 1 << 22 and 0 <= pad < vocab and 2 <= max_length <= 1 << 16):
        raise ModelError(f"model.json: text front-end values out of range ({frontend})")
    return create_text_model(family, vocab, pad, max_length, outputs, knobs)
