"""The recipe's `data` section."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from scaledl.data.text_config import TextConfig
from scaledl.errors import PackageError


class AudioConfig(BaseModel):
    """`data.audio`: how audio folders are read and what the model's log-mel front-end computes.

    Clips are mixed down to mono, resampled to `sample_rate` and padded or cropped (centred) to
    `duration_s`; random placement in training is the `time_shift` augmentation.
    """

    model_config = ConfigDict(extra="forbid")

    sample_rate: int | None = Field(
        None,
        ge=1000,
        le=384_000,
        description="resample to this rate, Hz (default: the first file's)",
    )
    duration_s: float = Field(1.0, gt=0.0, le=60.0, description="clip length; pad or crop, centred")
    window_ms: float = Field(25.0, gt=0.0, le=500.0, description="STFT window (Hann), ms")
    hop_ms: float = Field(10.0, gt=0.0, le=500.0, description="STFT hop, ms")
    n_mels: int = Field(40, ge=1, le=256, description="mel bands")
    f_min: float = Field(20.0, ge=0.0, description="lowest mel band edge, Hz")
    f_max: float | None = Field(None, gt=0.0, description="highest mel band edge, Hz (Nyquist)")
    log_floor: float = Field(1e-6, gt=0.0, le=1.0, description="power floor before the log")
    frames_per_token: int = Field(4, ge=1, le=64, description="transformer: frames per token")
    pool_segments: int = Field(8, ge=1, le=64, description="mlp: time segments mel bands pool to")
    max_input_seconds: float | None = Field(
        None, gt=0.0, le=3600.0, description="longest input served (default: max(10 s, 4 clips))"
    )

    @model_validator(mode="after")
    def _check(self) -> AudioConfig:
        if self.f_max is not None and self.f_max <= self.f_min:
            raise ValueError(f"f_max {self.f_max} must exceed f_min {self.f_min}")
        return self


class DataConfig(BaseModel):
    """Where the data comes from and how it is split.

    `source` is `digits` (the embedded default), an image folder (one sub-folder per class, with
    `train/` and `test/` or split by ratio), a folder or file of MNIST-style IDX data, a
    `.csv`/`.parquet` table, or an `.npz` with arrays `x` and `y`.
    """

    model_config = ConfigDict(extra="forbid")

    source: str = "digits"
    label_column: str = Field("label", description="label column of a table")
    val_fraction: float = Field(
        0.1, ge=0.0, lt=0.9, description="validation share of training rows"
    )
    test_fraction: float = Field(
        0.2, gt=0.0, lt=0.9, description="test share when no test split ships"
    )
    image_size: tuple[int, int] | None = Field(None, description="resize images to (height, width)")
    color: Literal["auto", "rgb", "gray"] = "auto"
    limit_per_class: int | None = Field(
        None, gt=0, description="image folders: read only the first N files of each class (by name)"
    )
    kind: Literal["auto", "image", "table", "sequence", "audio", "text"] = Field(
        "auto",
        description=".npz arrays: how to read x (auto: 2-D table, 3/4-D images); folders: "
        "audio or image; text: a column of texts (also implied by a `text` section)",
    )
    cache_dir: str | None = Field(
        None, description="decoded-image cache (default ~/.cache/scaledl)"
    )
    allow_small_classes: bool = Field(
        False,
        description="train even when a class has too few rows to appear in every split "
        "(by default that is an error naming the class: usually a stray label)",
    )

    @classmethod
    def from_lineage(cls, data: Any, package: object) -> DataConfig:
        """The data section a package's lineage records, checked like a recipe's.

        A package is untrusted: a bad field is a PackageError naming it, and `cache_dir` (where
        decoded images are written) is never taken from a package, only from the user.
        """
        if not isinstance(data, dict):
            raise PackageError(f"package {package}: manifest.json lineage.data must be an object")
        try:
            return cls.model_validate({**data, "cache_dir": None})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise PackageError(
                f"package {package}: manifest.json lineage.data.{where}: {first.get('msg')}"
            ) from None

    audio: AudioConfig = Field(
        default_factory=AudioConfig, description="audio folders and the log-mel front-end"
    )
    text: TextConfig | None = Field(
        None, description="text data: columns, file format, tokenizer (see TextConfig)"
    )

    def with_source(self, source: str, **update: Any) -> DataConfig:
        """This config reading another source (new data for a check, a fine-tune): the
        original source's separate test file (`text.test_source`) does not come along."""
        changes: dict[str, Any] = {"source": source, **update}
        if self.text is not None and self.text.test_source:
            changes["text"] = self.text.model_copy(update={"test_source": None})
        return self.model_copy(update=changes)
