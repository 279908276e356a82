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


Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
FileName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]


class TokenizerInfo(BaseModel):
    """The tokenizer a text model reads: a Hugging Face `tokenizers` JSON file in the package.

    Ids are ordered by frequency on the training split after the special tokens (pad, unk,
    cls), so id rank is frequency rank: the monitor's frequency bands and vocabulary trimming
    read it from the id alone.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: FileName = "tokenizer.json"
    sha256: Sha256Hex
    algorithm: Literal["wordpiece", "bpe", "unigram", "word"]
    vocab_size: int = Field(ge=4, le=1 << 22)
    lowercase: bool = True
    pad_id: int = Field(0, ge=0)
    unk_id: int = Field(1, ge=0)
    cls_id: int = Field(2, ge=0)

    @model_validator(mode="after")
    def _check_ids(self) -> TokenizerInfo:
        ids = (self.pad_id, self.unk_id, self.cls_id)
        if len(set(ids)) != 3 or max(ids) >= self.vocab_size:
            raise ValueError("pad_id, unk_id and cls_id must be distinct ids below vocab_size")
        return self


class TextRepresentation(BaseModel):
    """A per-token table (vocab × k) from the trained model's embedding: the monitor averages
    it over a text's tokens to watch the model's own pooled representation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: FileName = "text_representation.npy"
    sha256: Sha256Hex
    dims: int = Field(ge=1, le=64)


class TextSpec(SpecBase):
    """raw string → tokenizer (in the package) → int64 ids (N, L), L the longest text of the
    batch (at most `max_length` tokens with [CLS]), padded with `pad_id`."""

    kind: Literal["text"] = "text"
    tokenizer: TokenizerInfo
    max_length: int = Field(ge=2, le=1 << 16, description="tokens per text, [CLS] included")
    truncation: Literal["right", "left"] = Field(
        "right", description="right: keep a long text's beginning; left: keep its end"
    )
    padding: Literal["longest"] = "longest"
    max_chars: int = Field(ge=1, le=1 << 26, description="longest text accepted (characters)")
    frequency_bands: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: [100, 1000, 10000],
        max_length=8,
        description="token-rank boundaries of the monitor's frequency bands",
    )
    representation: TextRepresentation | None = None

    @model_validator(mode="after")
    def _check_text(self) -> TextSpec:
        if self.raw_shape:
            raise ValueError("a text sample is one string: raw_shape must be []")
        if self.frequency_bands != sorted(set(self.frequency_bands)):
            raise ValueError("frequency_bands must be increasing")
        return self


Preprocessing = Annotated[
    ImageSpec | TableSpec | SequenceSpec | TextSpec, Field(discriminator="kind")
]
KINDS: tuple[str, ...] = ("image", "table", "sequence", "text")


def preprocessing_kinds() -> tuple[str, ...]:
    return KINDS


def parse_preprocessing(raw: Any) -> ImageSpec | TableSpec | SequenceSpec | TextSpec:
    """A spec from its JSON form (raises pydantic's ValidationError)."""
    from pydantic import TypeAdapter

    adapter: TypeAdapter[Any] = TypeAdapter(Preprocessing)
    spec: ImageSpec | TableSpec | SequenceSpec | TextSpec = adapter.validate_python(raw)
    return spec
