"""The forecasting families' knobs (torch-free, so recipes validate without importing torch).

In a recipe they sit flat beside `family`, like every family's knobs:
`model: {family: transformer, d_model: 16, patch_len: 16, revin: true}`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from scaledl.config.models import validate_form_knobs
from scaledl.errors import ModelError


class LinearForecastKnobs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decomposition: bool = Field(True, description="trend + remainder, one map each (DLinear)")
    moving_average: int = Field(25, ge=1, le=4097, description="trend window (odd)")
    individual: bool = Field(False, description="separate weights per channel")
    hidden: list[int] = Field(default_factory=list, description="hidden layers ([] = linear)")
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    revin: bool = Field(False, description="normalize each window by its own statistics")

    @model_validator(mode="after")
    def _check(self) -> LinearForecastKnobs:
        if self.moving_average % 2 == 0:
            raise ValueError(f"moving_average must be odd, got {self.moving_average}")
        if self.individual and self.hidden:
            raise ValueError("individual channels are linear: leave hidden empty")
        return self


class TCNForecastKnobs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channels: list[int] = Field(
        default_factory=lambda: [32, 32, 32, 32, 32, 32],
        min_length=1,
        description="width of each residual level (dilation doubles per level)",
    )
    kernel_size: int = Field(3, ge=2, le=15)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    last_steps: int = Field(
        4, ge=1, description="steps of the final features the head reads (≤ lookback)"
    )
    revin: bool = Field(True, description="normalize each window by its own statistics")


class RNNForecastKnobs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cell: Literal["gru", "lstm"] = "gru"
    hidden: int = Field(128, ge=1, description="hidden units")
    layers: int = Field(1, ge=1, le=8)
    segment: int = Field(24, ge=1, description="look-back steps per recurrent step")
    channel_independent: bool = Field(True, description="one sequence per channel")
    decoder: Literal["direct", "pmf"] = Field(
        "direct",
        description="direct: the whole horizon from the last state; pmf: each horizon segment "
        "decoded in parallel from the last state and a learned position and channel "
        "(SegRNN's parallel multi-step forecasting; needs channel_independent)",
    )
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    revin: bool = Field(True, description="normalize each window by its own statistics")

    @model_validator(mode="after")
    def _pmf_needs_channels(self) -> RNNForecastKnobs:
        if self.decoder == "pmf" and not self.channel_independent:
            raise ValueError(
                "decoder pmf embeds each channel's identity: set channel_independent: true "
                "(or decoder: direct)"
            )
        if self.decoder == "pmf" and self.hidden < 2:
            raise ValueError("decoder pmf splits hidden between position and channel: hidden ≥ 2")
        return self


class PatchTSTKnobs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    d_model: int = Field(16, ge=4)
    heads: int = Field(4, ge=1)
    layers: int = Field(3, ge=1, le=24)
    ff: int = Field(128, ge=1, description="feed-forward width")
    patch_len: int = Field(16, ge=1)
    patch_stride: int = Field(8, ge=1)
    dropout: float = Field(0.2, ge=0.0, lt=1.0)
    head_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    revin: bool = Field(True, description="normalize each window by its own statistics")
    layer_heads: list[int] | None = Field(None, description="heads kept per layer (pruning)")
    layer_ff: list[int] | None = Field(None, description="feed-forward width per layer (pruning)")

    @model_validator(mode="after")
    def _check(self) -> PatchTSTKnobs:
        if self.d_model % self.heads:
            raise ValueError(f"d_model {self.d_model} must be divisible by heads {self.heads}")
        for name in ("layer_heads", "layer_ff"):
            value = getattr(self, name)
            if value is not None and len(value) != self.layers:
                raise ValueError(f"{name} must list one value per layer ({self.layers})")
        return self

    def per_layer(self) -> list[tuple[int, int]]:
        heads = self.layer_heads or [self.heads] * self.layers
        ff = self.layer_ff or [self.ff] * self.layers
        return list(zip(heads, ff, strict=True))


FORECAST_KNOBS: dict[str, type[BaseModel]] = {
    "mlp": LinearForecastKnobs,
    "cnn": TCNForecastKnobs,
    "rnn": RNNForecastKnobs,
    "transformer": PatchTSTKnobs,
}


def forecast_families() -> list[str]:
    return sorted(FORECAST_KNOBS)


def validate_forecast_knobs(family: str, knobs: dict[str, Any]) -> BaseModel:
    if family not in FORECAST_KNOBS:
        raise ModelError(
            f"model family {family!r} has no forecaster; valid for time series: "
            f"{', '.join(forecast_families())}"
        )
    cls = FORECAST_KNOBS[family]
    return validate_form_knobs(cls, knobs, f"model knobs for {family!r} on a time series", family)
