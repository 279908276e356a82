"""The recipe's `data` section."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from scaledl.config.audio import AudioConfig
from scaledl.config.series import SeriesConfig
from scaledl.config.text import TextConfig
from scaledl.errors import PackageError
from scaledl.validation import validate


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
    split_seed: int | None = Field(
        None,
        ge=0,
        le=2**32 - 1,
        description="seed of the train/validation/test split (default: the recipe's seed); "
        "fix it to vary the model's seed on the same split, e.g. for `scaledl ensemble`",
    )
    image_size: tuple[int, int] | None = Field(None, description="resize images to (height, width)")
    color: Literal["auto", "rgb", "gray"] = "auto"
    limit_per_class: int | None = Field(
        None, gt=0, description="image folders: read only the first N files of each class (by name)"
    )
    kind: Literal["auto", "image", "table", "sequence", "audio", "series", "text"] = Field(
        "auto",
        description=".npz arrays: how to read x (auto: 2-D table, 3/4-D images); folders: "
        "audio or image; series: a table of timestamped values read as forecast windows "
        "(see `series`); text: a column of texts (also implied by a `text` section)",
    )
    cache_dir: str | None = Field(
        None, description="decoded-image cache (default ~/.cache/scaledl)"
    )
    text: TextConfig | None = Field(
        None, description="text data: columns, file format, tokenizer (see TextConfig)"
    )
    series: SeriesConfig | None = Field(
        None, description="time series: windows, columns and the chronological split"
    )
    allow_small_classes: bool = Field(
        False,
        description="train even when a class has too few rows to appear in every split "
        "(by default that is an error naming the class: usually a stray label)",
    )
    # one section per modality with knobs of its own (scaledl.config.<kind>)
    audio: AudioConfig = Field(
        default_factory=AudioConfig, description="audio folders and the log-mel front-end"
    )

    @classmethod
    def from_lineage(cls, data: Any, package: object) -> DataConfig:
        """The data section a package's lineage records, checked like a recipe's.

        A package is untrusted: a bad field is a PackageError naming it, and `cache_dir` (where
        decoded images are written) is never taken from a package, only from the user.
        """
        if not isinstance(data, dict):
            raise PackageError(f"package {package}: manifest.json lineage.data must be an object")
        where = f"package {package}: manifest.json lineage.data"
        return validate(cls, {**data, "cache_dir": None}, where, PackageError)

    def with_source(self, source: str, **update: Any) -> DataConfig:
        """This config reading another source (new data for a check, a fine-tune): the
        original source's separate test file (`text.test_source`) does not come along."""
        changes: dict[str, Any] = {"source": source, **update}
        if self.text is not None and self.text.test_source:
            changes["text"] = self.text.model_copy(update={"test_source": None})
        return self.model_copy(update=changes)
