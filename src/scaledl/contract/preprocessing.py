"""What a raw input needs before the graph, per modality: the manifest's `preprocessing`.

Pure data, validated when a package is opened. Each modality (see `scaledl.modalities`) owns
one spec class here, discriminated by `kind`; the behaviour that fits and applies it lives in
the modality's unit. All values are what the training split gave: a spec never holds anything
measured on validation or test rows.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_RANK = 8
Dim = Annotated[int, Field(ge=1, le=1 << 24)]


class SpecBase(BaseModel):
    """Fields every modality's preprocessing carries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    raw_shape: list[Dim] = Field(
        max_length=MAX_RANK, description="one raw sample's shape, batch excluded"
    )

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.raw_shape)


class NormalizedSpec(SpecBase):
    """raw → × scale → (x − mean) / std, statistics per channel or per feature."""

    scale: float = Field(gt=0.0, description="raw value → [0, 1]-ish (1/255 for 8-bit pixels)")
    mean: list[float] = Field(min_length=1)
    std: list[float] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_statistics(self) -> NormalizedSpec:
        if len(self.mean) != len(self.std):
            raise ValueError(f"mean has {len(self.mean)} values but std has {len(self.std)}")
        if any(s <= 0.0 for s in self.std):
            raise ValueError("std values must be > 0")
        return self


class ImageGeometry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

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
        if len(self.mean) != self.image.channels:
            raise ValueError(f"{len(self.mean)} means for {self.image.channels} channel(s)")
        return self


class TableSpec(NormalizedSpec):
    kind: Literal["table"] = "table"

    @model_validator(mode="after")
    def _check_table(self) -> TableSpec:
        if len(self.raw_shape) != 1 or len(self.mean) != self.raw_shape[0]:
            raise ValueError("a table sample is one row of features: raw_shape [F], F means")
        return self


class SequenceSpec(NormalizedSpec):
    kind: Literal["sequence"] = "sequence"

    @model_validator(mode="after")
    def _check_sequence(self) -> SequenceSpec:
        if len(self.raw_shape) != 2 or len(self.mean) != self.raw_shape[1]:
            raise ValueError("a sequence sample is (steps, features): raw_shape [T, F], F means")
        return self


ColumnName = Annotated[str, Field(min_length=1, max_length=256)]


class SeriesSpec(SpecBase):
    """Forecast windows: raw_shape [lookback, inputs] in original units. The scaling (training
    period statistics) happens inside the graph, which also returns the forecast
    (N, horizon, targets) in original units; these values rebuild that front-end."""

    kind: Literal["series"] = "series"
    horizon: Dim
    stride: int = Field(1, ge=1)
    timestamp: ColumnName | None = None
    inputs: list[ColumnName] = Field(min_length=1, max_length=4096)
    targets: list[ColumnName] = Field(min_length=1, max_length=4096)
    target_index: list[int] = Field(description="each target's position among the inputs, or -1")
    mean: list[float]
    std: list[float]
    target_mean: list[float]
    target_std: list[float]
    step_seconds: float | None = Field(None, gt=0.0, description="time between rows")
    season: int | None = Field(None, ge=1, description="steps per season (seasonal naive)")

    @model_validator(mode="after")
    def _check_series(self) -> SeriesSpec:
        f, t = len(self.inputs), len(self.targets)
        if len(self.raw_shape) != 2 or self.raw_shape[1] != f:
            raise ValueError(f"raw_shape must be [lookback, {f} inputs], got {self.raw_shape}")
        if len(self.mean) != f or len(self.std) != f:
            raise ValueError(f"{f} inputs need {f} means and stds")
        if len(self.target_mean) != t or len(self.target_std) != t or len(self.target_index) != t:
            raise ValueError(f"{t} targets need {t} means, stds and input positions")
        if any(s <= 0.0 for s in [*self.std, *self.target_std]):
            raise ValueError("std values must be > 0")
        if any(not -1 <= i < f for i in self.target_index):
            raise ValueError(f"target_index values must be -1 or a position among {f} inputs")
        return self

    @property
    def lookback(self) -> int:
        return self.raw_shape[0]

    @property
    def output_shape(self) -> tuple[int, int]:
        return (self.horizon, len(self.targets))


Preprocessing = Annotated[
    ImageSpec | TableSpec | SequenceSpec | SeriesSpec, Field(discriminator="kind")
]
KINDS: tuple[str, ...] = ("image", "table", "sequence", "series")


def preprocessing_kinds() -> tuple[str, ...]:
    return KINDS


def parse_preprocessing(raw: Any) -> ImageSpec | TableSpec | SequenceSpec | SeriesSpec:
    """A spec from its JSON form (raises pydantic's ValidationError)."""
    from pydantic import TypeAdapter

    adapter: TypeAdapter[Any] = TypeAdapter(Preprocessing)
    spec: ImageSpec | TableSpec | SequenceSpec | SeriesSpec = adapter.validate_python(raw)
    return spec
