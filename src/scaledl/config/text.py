"""The recipe's `data.text` section: how texts are read and tokenized."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class TextConfig(BaseModel):
    """Text columns of CSV/TSV/Parquet/JSON-lines files (or one text per line in `.txt`), and
    the tokenizer trained on the training split.

    The label column is `data.label_column`. A relative `test_source` is looked up beside the
    training file first (`source: data/train.tsv`, `test_source: dev.tsv`).
    """

    model_config = ConfigDict(extra="forbid")

    text_column: str | None = Field(
        None, description="column holding the text (default: the only column besides the label)"
    )
    format: Literal["auto", "csv", "tsv", "parquet", "jsonl", "txt"] = Field(
        "auto", description="file format (auto: from the suffix)"
    )
    delimiter: str | None = Field(
        None, description="csv/tsv field delimiter (default: tab for .tsv, comma otherwise)"
    )
    quoting: Literal["auto", "csv", "none"] = Field(
        "auto",
        description='csv: "…" quotes fields (doubled "" inside); none: a quote is a plain '
        "character (GLUE TSVs such as SST-2); auto: none for .tsv, csv otherwise",
    )
    encoding: str = Field("utf-8", description="file encoding")
    test_source: str | None = Field(
        None, description="a separate labelled test file (else data.test_fraction is split off)"
    )
    group_phrases: bool = Field(
        False,
        description="split by sentence: a row that is a run of words inside a longer row goes "
        "to that row's side of the split, and validation (and a test split carved from the "
        "file) holds whole sentences only. For files that list every phrase of a sentence as "
        "a row (SST-2's train.tsv): otherwise most validation rows are pieces of training "
        "sentences, and validation overstates accuracy on new text",
    )
    tokenizer: Literal["wordpiece", "bpe", "unigram", "word"] = Field(
        "wordpiece", description="tokenizer trained on the training split (Hugging Face tokenizers)"
    )
    tokenizer_from: str | None = Field(
        None,
        description="a text package (folder or .zip) whose tokenizer is used instead of "
        "training one (then tokenizer, vocab_size, min_frequency, lowercase and "
        "split_punctuation are the package's): models on one tokenizer share token ids and "
        "can join one `scaledl ensemble`",
    )
    vocab_size: int = Field(16000, ge=16, le=1 << 20, description="tokens in the vocabulary")
    min_frequency: int = Field(
        1, ge=1, description="a word/piece seen fewer times in training is not added"
    )
    lowercase: bool = Field(True, description="lower-case (and NFKC-normalize) before tokenizing")
    split_punctuation: bool = Field(
        True,
        description='split punctuation off words before tokenizing ("great!" → great !); '
        "off for text that is already tokenized (GLUE's \"does n't\" stays n't)",
    )
    max_length: int = Field(
        128, ge=2, le=1 << 16, description="tokens per text including [CLS]; longer are truncated"
    )
    truncation: Literal["right", "left"] = Field(
        "right", description="right: keep the beginning of a long text; left: keep its end"
    )
    max_chars: int = Field(
        65536,
        ge=1,
        le=1 << 26,
        description="longest text a served model accepts, in characters (longer → HTTP 413)",
    )

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str | None) -> str | None:
        if value is not None and len(value) != 1:
            raise ValueError("delimiter must be one character (e.g. ',' or '\\t')")
        return value
