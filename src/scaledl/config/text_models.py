"""The text families' knobs (torch-free, so recipes validate without importing torch).

The four families read token ids in their own form (`scaledl.models.text`); their knobs sit flat
beside `family` in a recipe, like every family's: `model: {family: cnn, kernel_sizes: [3, 4, 5]}`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from scaledl.config.models import validate_form_knobs
from scaledl.errors import ModelError


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


def validate_text_knobs(family: str, knobs: dict[str, Any]) -> _Knobs:
    cls = KNOBS.get(family)
    if cls is None:
        raise ModelError(f"family {family!r} does not read text; valid: {', '.join(KNOBS)}")
    return validate_form_knobs(cls, knobs, f"text model knobs for {family!r}", family)
