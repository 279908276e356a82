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
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

BIGRAM_MULTIPLIER = 1_000_003  # a prime: (a · P + b) mod buckets spreads bigrams evenly


class _Knobs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    embed_dim: int = Field(128, ge=4, le=4096, description="token embedding width")
    dropout: float = Field(0.3, ge=0.0, lt=1.0, description="before the head (and between layers)")
    embed_dropout: float = Field(0.0, ge=0.0, lt=1.0, description="on the token embeddings")


class TextMLPKnobs(_Knobs):
    hidden: list[int] = Field(default_factory=lambda: [256], description="hidden layer widths")
    ngrams: Literal[1, 2] = Field(2, description="2: add hashed bigram embeddings (fastText)")
    bigram_buckets: int = Field(65536, ge=16, le=1 << 24, description="hashed bigram rows")


class TextCNNKnobs(_Knobs):
    kernel_sizes: list[int] = Field(
        default_factory=lambda: [3, 4, 5], min_length=1, description="filter widths"
    )
    channels: int = Field(128, ge=1, description="filters per width")
    widths: list[int] | None = Field(None, description="filters per width (written by pruning)")

    @model_validator(mode="after")
    def _check(self) -> TextCNNKnobs:
        if not all(1 <= k <= 15 for k in self.kernel_sizes):
            raise ValueError("kernel_sizes must be 1–15 tokens")
        if self.widths is not None and len(self.widths) != len(self.kernel_sizes):
            raise ValueError("widths must give one count per kernel size")
        return self

    def per_width(self) -> list[int]:
        return (
            list(self.widths)
            if self.widths is not None
            else [self.channels] * len(self.kernel_sizes)
        )


class TextRNNKnobs(_Knobs):
    cell: Literal["gru", "lstm"] = "gru"
    hidden: int | list[int] = Field(128, description="hidden units (one size, or one per layer)")
    layers: int = Field(1, ge=1, le=8)
    bidirectional: bool = True
    pooling: Literal["max", "mean", "max+mean"] = "max+mean"

    @model_validator(mode="after")
    def _check(self) -> TextRNNKnobs:
        if isinstance(self.hidden, list) and len(self.hidden) != self.layers:
            raise ValueError(f"hidden lists {len(self.hidden)} sizes for {self.layers} layers")
        return self

    def layer_sizes(self) -> list[int]:
        return list(self.hidden) if isinstance(self.hidden, list) else [self.hidden] * self.layers


class TextTransformerKnobs(_Knobs):
    embed_dim: int = Field(128, ge=8, le=4096, description="d_model: token and residual width")
    heads: int = Field(4, ge=1)
    layers: int = Field(2, ge=1, le=24)
    ff: int = Field(256, ge=1, description="feed-forward width")
    pooling: Literal["mean", "cls"] = "mean"
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    head_dim: int | None = Field(None, description="per-head width (default embed_dim // heads)")
    layer_heads: list[int] | None = Field(None, description="heads kept per layer (pruning)")
    layer_ff: list[int] | None = Field(None, description="feed-forward width per layer (pruning)")

    @model_validator(mode="after")
    def _check(self) -> TextTransformerKnobs:
        if self.head_dim is None and self.embed_dim % self.heads:
            raise ValueError(f"embed_dim {self.embed_dim} must be divisible by heads {self.heads}")
        for name in ("layer_heads", "layer_ff"):
            value = getattr(self, name)
            if value is not None and len(value) != self.layers:
                raise ValueError(f"{name} must list one value per layer ({self.layers})")
        return self

    def per_layer(self) -> list[tuple[int, int]]:
        heads = self.layer_heads or [self.heads] * self.layers
        ff = self.layer_ff or [self.ff] * self.layers
        return list(zip(heads, ff, strict=True))


KNOBS: dict[str, type[_Knobs]] = {
    "mlp": TextMLPKnobs,
    "cnn": TextCNNKnobs,
    "rnn": TextRNNKnobs,
    "transformer": TextTransformerKnobs,
}


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


def validate_text_knobs(family: str, knobs: dict[str, Any]) -> _Knobs:
    from pydantic import ValidationError

    from scaledl.errors import ModelError

    cls = KNOBS.get(family)
    if cls is None:
        raise ModelError(f"family {family!r} does not read text; valid: {', '.join(KNOBS)}")
    try:
        return cls.model_validate(knobs)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or family}: {e['msg']}" for e in exc.errors()
        )
        valid = ", ".join(cls.model_fields)
        raise ModelError(
            f"text model knobs for {family!r}: {problems} (valid knobs: {valid})"
        ) from None


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
