"""What a raw input needs before the graph, per modality: the manifest's `preprocessing`.

Pure data, validated when a package is opened. Each modality (see `scaledl.modalities`) owns
one spec class here, discriminated by `kind`; the behaviour that fits and applies it lives in
the modality's unit. All values are what the training split gave: a spec never holds anything
measured on validation or test rows.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

MAX_RANK = 8
MAX_VALUES = 1 << 31  # values in one raw sample
Dim = Annotated[int, Field(ge=1, le=1 << 24)]


class SpecBase(BaseModel):
    """Fields every modality's preprocessing carries."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    kind: str
    raw_shape: list[Dim] = Field(
        min_length=1, max_length=MAX_RANK, description="one raw sample's shape, batch excluded"
    )

    @field_validator("raw_shape")
    @classmethod
    def _bounded(cls, shape: list[int]) -> list[int]:
        if math.prod(shape) > MAX_VALUES:
            raise ValueError(f"describes {math.prod(shape):,} values per sample (too many)")
        return shape

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.raw_shape)


class NormalizedSpec(SpecBase):
    """raw → × scale → (x − mean) / std, statistics per channel or per feature."""

    scale: float = Field(gt=0.0, description="raw value → [0, 1]-ish (1/255 for 8-bit pixels)")
    mean: list[float] = Field(min_length=1)
    std: list[float] = Field(min_length=1)

    @field_validator("mean", "std")
    @classmethod
    def _finite(cls, values: list[float], info: ValidationInfo) -> list[float]:
        if not all(math.isfinite(v) for v in values):
            raise ValueError("must be finite numbers")
        if info.field_name == "std" and any(v <= 0.0 for v in values):
            raise ValueError("must be > 0 (a constant channel gets std 1)")
        return values

    @model_validator(mode="after")
    def _one_statistic_per_channel(self) -> NormalizedSpec:
        channels = self.channels()
        for name in ("mean", "std"):
            count = len(getattr(self, name))
            if count not in (1, channels):
                raise ValueError(
                    f"{name} holds {count} values; the input has {channels} "
                    f"{'channel' if self.kind == 'image' else 'feature'}(s)"
                )
        return self

    def channels(self) -> int:
        """How many channels (features) the statistics run along."""
        return self.raw_shape[-1]


class ImageGeometry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    height: Dim
    width: Dim
    channels: int = Field(ge=1, le=64)
    max_value: float = Field(gt=0.0, description="the raw value of a white pixel (255, or 16)")


class ImageSpec(NormalizedSpec):
    kind: Literal["image"] = "image"
    image: ImageGeometry

    @model_validator(mode="after")
    def _check_image(self) -> ImageSpec:
        expected = [self.image.channels, self.image.height, self.image.width]
        if self.raw_shape != expected:
            raise ValueError(f"raw_shape {self.raw_shape} disagrees with image {expected}")
        return self

    def channels(self) -> int:
        return self.raw_shape[0]


class TableSpec(NormalizedSpec):
    kind: Literal["table"] = "table"

    @model_validator(mode="after")
    def _check_table(self) -> TableSpec:
        if len(self.raw_shape) != 1:
            raise ValueError("a table sample is one row of features: raw_shape [F]")
        return self


class SequenceSpec(NormalizedSpec):
    kind: Literal["sequence"] = "sequence"

    @model_validator(mode="after")
    def _check_sequence(self) -> SequenceSpec:
        if len(self.raw_shape) != 2:
            raise ValueError("a sequence sample is (steps, features): raw_shape [T, F]")
        return self


Preprocessing = Annotated[ImageSpec | TableSpec | SequenceSpec, Field(discriminator="kind")]
KINDS: tuple[str, ...] = ("image", "table", "sequence")


def preprocessing_kinds() -> tuple[str, ...]:
    return KINDS


def parse_preprocessing(raw: Any) -> ImageSpec | TableSpec | SequenceSpec:
    """A spec from its JSON form (raises pydantic's ValidationError)."""
    from pydantic import TypeAdapter

    adapter: TypeAdapter[Any] = TypeAdapter(Preprocessing)
    spec: ImageSpec | TableSpec | SequenceSpec = adapter.validate_python(raw)
    return spec
