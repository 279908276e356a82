"""The recipe's `model` knobs: one typed config per family, and the knob registry.

A family is a knobs config (here) plus a builder (`scaledl.models`, where the torch modules
live); `scaledl.models.register_family` registers both, so a plugin family's knobs are
checked like the built-in ones as soon as its module is imported. The `custom` family names
a class by import path: only its form is checked here, it is imported (with `--trust-code`)
when the model is built.
"""

from __future__ import annotations

import re
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from scaledl.errors import ModelError
from scaledl.validation import validate

M = TypeVar("M", bound=BaseModel)


class MLPKnobs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hidden: list[int] = Field(default_factory=lambda: [256, 128], description="hidden layer sizes")
    activation: Literal["relu", "gelu", "silu"] = "relu"
    batch_norm: bool = False
    dropout: float = Field(0.0, ge=0.0, lt=1.0)


class CNNKnobs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channels: list[int] = Field(default_factory=lambda: [32, 64], description="filters per stage")
    depth: int | list[int] = Field(2, description="convolutions per stage (one, or one per stage)")
    kernel_size: int = Field(3, ge=1, le=11, description="odd filter size")
    batch_norm: bool = True
    residual: bool = False
    global_pool: Literal["avg", "max"] = "avg"
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    widths: list[list[int]] | None = Field(
        None, description="exact filters of every conv per stage (written by structured pruning)"
    )
    activation: Literal["relu", "gelu"] = "relu"
    downsample: Literal["pool_first", "pool_after_conv"] = Field(
        "pool_first",
        description="pool_first: stages after the first open with a 2x2 max-pool; "
        "pool_after_conv: every stage pools right after its first conv (conv, pool, BN, act), "
        "so that conv sees the full resolution and the norm and activation a quarter of it",
    )
    stem: Literal["none", "whiten"] = Field(
        "none",
        description="whiten: a frozen 2x2 patch-whitening conv in front of the stages, "
        "initialised from the training images (images only)",
    )
    tta: Literal["none", "flip"] = Field(
        "none",
        description="flip: predictions average the image and its mirror (inside the exported "
        "graph, so twice the inference cost; images only)",
    )

    @model_validator(mode="after")
    def _check(self) -> CNNKnobs:
        if self.kernel_size % 2 == 0:
            raise ValueError("kernel_size must be odd (1, 3, 5, …)")
        if not self.channels or min(self.channels) < 1:
            raise ValueError("channels must be a non-empty list of positive sizes")
        depths = self.stage_depths()
        if len(depths) != len(self.channels) or not all(1 <= d <= 16 for d in depths):
            raise ValueError("depth must be 1–16, given once or once per stage")
        if self.widths is not None and [len(w) for w in self.widths] != depths:
            raise ValueError("widths must hold `depth` counts for each stage")
        return self

    def stage_depths(self) -> list[int]:
        if isinstance(self.depth, list):
            return list(self.depth)
        return [self.depth] * len(self.channels)

    def stage_widths(self) -> list[list[int]]:
        if self.widths is not None:
            return [list(w) for w in self.widths]
        return [[c] * d for c, d in zip(self.channels, self.stage_depths(), strict=True)]


class RNNKnobs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cell: Literal["gru", "lstm"] = "gru"
    hidden: int | list[int] = Field(128, description="hidden units (one size, or one per layer)")
    layers: int = Field(1, ge=1, le=8)
    bidirectional: bool = False
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="between stacked layers")

    @model_validator(mode="after")
    def _check(self) -> RNNKnobs:
        if isinstance(self.hidden, list) and len(self.hidden) != self.layers:
            raise ValueError(f"hidden lists {len(self.hidden)} sizes for {self.layers} layers")
        return self

    def layer_sizes(self) -> list[int]:
        return list(self.hidden) if isinstance(self.hidden, list) else [self.hidden] * self.layers


class TransformerKnobs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    d_model: int = Field(64, ge=8)
    heads: int = Field(4, ge=1)
    layers: int = Field(2, ge=1, le=24)
    ff: int = Field(128, ge=1, description="feed-forward width")
    patch_size: int = Field(2, ge=1, description="image patch side")
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    head_dim: int | None = Field(None, description="per-head width (default d_model // heads)")
    layer_heads: list[int] | None = Field(None, description="heads kept per layer (pruning)")
    layer_ff: list[int] | None = Field(None, description="feed-forward width per layer (pruning)")

    @model_validator(mode="after")
    def _check(self) -> TransformerKnobs:
        if self.head_dim is None and self.d_model % self.heads:
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

    def resolved_head_dim(self) -> int:
        return self.head_dim or self.d_model // self.heads


CUSTOM = "custom"
_KNOBS: dict[str, type[BaseModel]] = {
    "mlp": MLPKnobs,
    "cnn": CNNKnobs,
    "rnn": RNNKnobs,
    "transformer": TransformerKnobs,
}
_CLASS_PATH = r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*"


def register_knobs(family: str, knobs: type[BaseModel]) -> None:
    """Make `family`'s knobs known to recipes (`scaledl.models.register_family` calls this)."""
    _KNOBS[family] = knobs


def knob_families() -> list[str]:
    return sorted(_KNOBS)


def knobs_class(family: str) -> type[BaseModel]:
    if family not in _KNOBS:
        valid = ", ".join([*knob_families(), CUSTOM])
        raise ModelError(f"unknown model family {family!r}; valid: {valid}")
    return _KNOBS[family]


def validate_knobs(family: str, knobs: dict[str, Any]) -> BaseModel:
    """The family's typed knobs; a bad one is a ModelError naming it and the valid knobs."""
    cls = knobs_class(family)
    return validate(cls, knobs, f"model knobs for {family!r}", ModelError)


def check_custom_target(knobs: dict[str, Any]) -> str:
    """The `module:Class` a custom model names (checked for its form, never imported here)."""
    target = knobs.get("class_path")
    if not isinstance(target, str) or not re.fullmatch(_CLASS_PATH, target):
        raise ModelError(
            "a custom model needs knobs.class_path = 'package.module:ClassName' "
            f"(got {str(target)[:80]!r})"
        )
    kwargs = knobs.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise ModelError(f"custom model {target!r}: knobs.kwargs must be a mapping")
    return target


class ModelConfig(BaseModel):
    """`family` plus that family's knobs, flat (e.g. `{family: cnn, channels: [32, 64]}`)."""

    model_config = ConfigDict(extra="allow")

    family: str = "cnn"

    @model_validator(mode="after")
    def _check_knobs(self) -> ModelConfig:
        try:
            if self.family == CUSTOM:
                # only the form is checked: the class is imported at training, with --trust-code
                if self.knobs():
                    check_custom_target(self.knobs())
            else:
                validate_knobs(self.family, self.knobs())
        except ModelError as exc:
            # the family's other forms have knobs of their own (a forecaster on a series, token
            # ids on text); the data decides which form is built, and checks it for real then
            if not _other_form_ok(self.family, self.knobs()):
                raise ValueError(_closest_form_error(self.family, self.knobs(), exc)) from None
        return self

    def knobs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


def _closest_form_error(family: str, knobs: dict[str, Any], error: ModelError) -> str:
    """The problem as the form that knows every knob's name sees it: `decoder: pmf` without
    `channel_independent` is a forecaster's mistake, not two unknown image-model keys."""
    from scaledl.config.forecast import FORECAST_KNOBS, validate_forecast_knobs
    from scaledl.config.text_models import KNOBS, validate_text_knobs

    if set(knobs) <= set(knobs_class(family).model_fields):
        return str(error)  # the names fit the family's own form: its error is the one
    forms = ((FORECAST_KNOBS, validate_forecast_knobs), (KNOBS, validate_text_knobs))
    for classes, check in forms:
        cls = classes.get(family)
        if cls is not None and set(knobs) <= set(cls.model_fields):
            try:
                check(family, knobs)
            except ModelError as exc:
                return str(exc)
    return str(error)


def _other_form_ok(family: str, knobs: dict[str, Any]) -> bool:
    """Knobs valid for the family's forecaster or text model (checked for real once the data
    is known)."""
    from scaledl.config.forecast import validate_forecast_knobs
    from scaledl.config.text_models import validate_text_knobs

    for check in (validate_forecast_knobs, validate_text_knobs):
        try:
            check(family, knobs)
        except ModelError:
            continue
        return True
    return False


def validate_form_knobs(cls: type[M], knobs: dict[str, Any], where: str, family: str) -> M:
    """`cls.model_validate(knobs)`; a failure is one ModelError naming every problem and the
    valid knobs (the family's other input forms, forecasts and texts, validate through it)."""
    try:
        return cls.model_validate(knobs)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or family}: {e['msg']}" for e in exc.errors()
        )
        valid = ", ".join(cls.model_fields)
        raise ModelError(f"{where}: {problems} (valid knobs: {valid})") from None
