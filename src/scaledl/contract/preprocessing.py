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

    def package_files(self) -> dict[str, tuple[str, str]]:
        """Files of the package this spec names: field → (file name, sha256). The manifest
        checks each is listed with that checksum (text: the tokenizer)."""
        return {}


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


class LogMel(BaseModel):
    """The log-mel front-end inside an audio model's graph: STFT (Hann window, zero-padded,
    centred frames) → power → mel filterbank (Slaney) → natural log of max(mel, log_floor)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_fft: int = Field(ge=16, le=8192, description="DFT size in samples")
    win_length: int = Field(ge=16, le=8192, description="Hann window length in samples")
    hop_length: int = Field(ge=1, le=8192, description="samples between frames")
    n_mels: int = Field(ge=1, le=256, description="mel bands")
    f_min: float = Field(ge=0.0, description="lowest band edge, Hz")
    f_max: float = Field(gt=0.0, description="highest band edge, Hz")
    log_floor: float = Field(gt=0.0, le=1.0, description="power floor before the log")

    @model_validator(mode="after")
    def _check_logmel(self) -> LogMel:
        if self.win_length > self.n_fft:
            raise ValueError(f"win_length {self.win_length} exceeds n_fft {self.n_fft}")
        if self.f_max <= self.f_min:
            raise ValueError(f"f_max {self.f_max} must exceed f_min {self.f_min}")
        return self


class AudioSpec(SpecBase):
    """A fixed-length mono waveform in [-1, 1] at `sample_rate`; the graph computes the log-mel
    features itself and normalizes each band with the training split's `mean` and `std`."""

    kind: Literal["audio"] = "audio"
    sample_rate: int = Field(ge=1000, le=384_000, description="Hz")
    logmel: LogMel
    mean: list[float] = Field(min_length=1, description="per mel band, training split")
    std: list[float] = Field(min_length=1, description="per mel band, training split")
    frames_per_token: int = Field(4, ge=1, le=64, description="frames per transformer token")
    pool_segments: int = Field(8, ge=1, le=64, description="time segments the mlp reads")
    max_input_seconds: float = Field(gt=0.0, le=3600.0, description="longest accepted input")

    @model_validator(mode="after")
    def _check_audio(self) -> AudioSpec:
        if len(self.raw_shape) != 1:
            raise ValueError("an audio sample is one waveform: raw_shape [samples]")
        if self.logmel.f_max > self.sample_rate / 2 + 1e-6:
            raise ValueError(f"f_max {self.logmel.f_max} is above Nyquist ({self.sample_rate / 2})")
        if len(self.mean) != self.logmel.n_mels or len(self.std) != self.logmel.n_mels:
            raise ValueError(f"mean and std need one value per mel band ({self.logmel.n_mels})")
        if any(s <= 0.0 for s in self.std):
            raise ValueError("std values must be > 0")
        if self.samples < self.logmel.n_fft // 2 + 1:
            raise ValueError(f"clips of {self.samples} samples are shorter than half a window")
        return self

    @property
    def samples(self) -> int:
        return self.raw_shape[0]

    @property
    def frames(self) -> int:
        """Spectrogram frames of one clip (centred frames: one per hop, plus one)."""
        return 1 + self.samples // self.logmel.hop_length

    @property
    def duration_s(self) -> float:
        return self.samples / self.sample_rate


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


Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
FileName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]


class TokenizerInfo(BaseModel):
    """The tokenizer a text model reads: a Hugging Face `tokenizers` JSON file in the package.

    Ids are ordered by frequency on the training split after the special tokens (pad, unk,
    cls), so id rank is frequency rank: the monitor's frequency bands and vocabulary trimming
    read it from the id alone.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

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

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    file: FileName = "text_representation.npy"
    sha256: Sha256Hex
    dims: int = Field(ge=1, le=64)


class TextSpec(SpecBase):
    """raw string → tokenizer (in the package) → int64 ids (N, L), L the longest text of the
    batch (at most `max_length` tokens with [CLS]), padded with `pad_id`."""

    kind: Literal["text"] = "text"
    raw_shape: list[Dim] = Field(
        default_factory=list, max_length=0, description="a text sample is one string: []"
    )
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

    def package_files(self) -> dict[str, tuple[str, str]]:
        files = {"tokenizer": (self.tokenizer.file, self.tokenizer.sha256)}
        if self.representation is not None:
            files["representation"] = (self.representation.file, self.representation.sha256)
        return files

    @model_validator(mode="after")
    def _check_text(self) -> TextSpec:
        if self.raw_shape:
            raise ValueError("a text sample is one string: raw_shape must be []")
        if self.frequency_bands != sorted(set(self.frequency_bands)):
            raise ValueError("frequency_bands must be increasing")
        return self


AnySpec = ImageSpec | TableSpec | SequenceSpec | AudioSpec | SeriesSpec | TextSpec
Preprocessing = Annotated[AnySpec, Field(discriminator="kind")]
KINDS: tuple[str, ...] = ("image", "table", "sequence", "audio", "series", "text")


def preprocessing_kinds() -> tuple[str, ...]:
    return KINDS


def parse_preprocessing(raw: Any) -> AnySpec:
    """A spec from its JSON form (raises pydantic's ValidationError)."""
    from pydantic import TypeAdapter

    adapter: TypeAdapter[Any] = TypeAdapter(Preprocessing)
    spec: AnySpec = adapter.validate_python(raw)
    return spec
