"""The recipe's `data` section."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from scaledl.data.text_config import TextConfig


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
    kind: Literal["auto", "image", "table", "sequence", "text"] = Field(
        "auto",
        description=".npz arrays: how to read x (auto: 2-D table, 3/4-D images); "
        "text: a column of texts (also implied by a `text` section)",
    )
    cache_dir: str | None = Field(
        None, description="decoded-image cache (default ~/.cache/scaledl)"
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
