"""Text: one string per sample; the graph reads int64 token ids (N, L), L the longest text of
the batch.

- data: CSV/TSV/Parquet/JSON-lines with a text and a label column, `.txt` with one unlabelled
  text per line (`scaledl.data.text`);
- preprocessing: a Hugging Face tokenizer trained on the training split, saved in the package
  (`tokenizer.json`, its sha256 in the spec) and applied by `to_graph` in every stage;
- models: the four families on token ids (`scaledl.models.text`);
- serving: V2 BYTES strings; tokenized in the batch runner, bucketed by length;
- monitoring: length, unknown-token share, frequency bands and the model's pooled
  representation (`features`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from scaledl.config.data import DataConfig
from scaledl.config.text import TextConfig
from scaledl.contract import Signature, SpecBase, TensorSpec, TextSpec
from scaledl.contract.preprocessing import TextRepresentation
from scaledl.data.dataset import DataSplits, LoadedData
from scaledl.errors import DataError, PackageError
from scaledl.modalities.base import BatchTransform, BodyLimits, Modality, ServingAdapter
from scaledl.modalities.text import features, store
from scaledl.modalities.text.serving import SERVED_INPUT, TextServing, check_texts
from scaledl.modalities.text.tokenizer import (
    register_tokenizer,
    shared_tokenizer,
    tokenizer_for,
    tokenizer_info,
    train_tokenizer,
)

log = logging.getLogger(__name__)
GROUPED = "phrases with their sentence (data.text.group_phrases)"
TEXT_TYPES = ("text/plain",)
OWN_SUFFIXES = {".jsonl", ".ndjson", ".txt"}  # no other modality reads these
MAX_PREDICT_TEXTS = 4096


class TextModality(Modality):
    kind: ClassVar[str] = "text"
    spec_type: ClassVar[type[TextSpec]] = TextSpec

    # ---- data ---------------------------------------------------------------------------
    def claims(self, path: Path, config: DataConfig) -> bool:
        from scaledl.data.text import TEXT_SUFFIXES

        if not path.is_file() or path.suffix.lower() not in TEXT_SUFFIXES:
            return False
        asked = config.kind == "text" or config.text is not None
        return asked or path.suffix.lower() in OWN_SUFFIXES

    def read(self, path: Path, config: DataConfig, task: str) -> LoadedData:
        from scaledl.data.text import read_text_data

        return read_text_data(path, config, task)

    def row_groups(self, loaded: LoadedData, config: DataConfig) -> tuple[np.ndarray, str] | None:
        """With `data.text.group_phrases`: each phrase with the sentence that holds it."""
        if config.text is None or not config.text.group_phrases:
            return None
        from scaledl.modalities.text.phrases import phrase_groups

        groups = phrase_groups(loaded.data.x)
        log.info(
            "text split by sentence: %d rows in %d sentences", len(loaded.data), len(groups.heads)
        )
        return groups.group, GROUPED

    # ---- preprocessing ------------------------------------------------------------------
    def fit(self, splits: DataSplits) -> TextSpec:
        given = splits.config.text if splits.config is not None else None
        config = given if given is not None else TextConfig()
        if config.tokenizer_from is not None:
            info = shared_tokenizer(config.tokenizer_from)
        else:
            data = train_tokenizer(as_texts(splits.train.x, "training texts"), config)
            info = tokenizer_info(data, config)
        return TextSpec(
            raw_shape=[],
            tokenizer=info,
            max_length=config.max_length,
            truncation=config.truncation,
            max_chars=config.max_chars,
        )

    seen_fix: ClassVar[str] = (
        "data.text.group_phrases: true (a file of phrases split by sentence: validation then "
        "holds sentences none of whose phrases trained)"
    )

    def seen_in_training(self, splits: DataSplits) -> float | None:
        if splits.grouped == GROUPED:
            return 0.0  # a held-out sentence inside a training row would not head a group
        from scaledl.modalities.text.overlap import share_inside

        return share_inside(splits.val.x, splits.train.x)

    def to_graph(self, spec: TextSpec, raw: Any) -> np.ndarray:
        return tokenizer_for(spec).encode(as_texts(raw, "raw input"))

    def check_raw(self, spec: SpecBase, raw: Any) -> None:
        as_texts(raw, "raw input")

    def batch_transform(self, spec: TextSpec) -> TokenBatch:
        return TokenBatch(spec)

    def finish(self, spec: TextSpec, model: Any) -> TextSpec:
        data = features.representation_bytes(model, spec.tokenizer.vocab_size)
        if not data:
            return spec
        digest = store.register(data)
        info = TextRepresentation(
            file=features.REPRESENTATION_FILE, sha256=digest, dims=features.table_dims(data)
        )
        return spec.model_copy(update={"representation": info})

    # ---- package files ------------------------------------------------------------------
    def package_files(self, spec: TextSpec) -> dict[str, bytes]:
        files = {spec.tokenizer.file: _stored(spec.tokenizer.sha256, "tokenizer")}
        if spec.representation is not None:
            info = spec.representation
            files[info.file] = _stored(info.sha256, "token table")
        return files

    def bind_package(self, spec: TextSpec, read: Callable[[str], bytes]) -> None:
        register_tokenizer(read(spec.tokenizer.file), spec.tokenizer.sha256)
        if spec.representation is not None:
            info = spec.representation
            store.register(read(info.file), info.sha256, info.file)

    # ---- the exported graph -------------------------------------------------------------
    def graph_signature(self, spec: TextSpec, default: Signature) -> Signature:
        ids = [TensorSpec(name=t.name, datatype="INT64", shape=[-1, -1]) for t in default.inputs]
        return Signature(inputs=ids, outputs=default.outputs)

    def dynamic_axes(self) -> dict[int, str]:
        return {1: "sequence"}

    # ---- serving ------------------------------------------------------------------------
    def served_inputs(self, spec: TextSpec, graph_inputs: list[TensorSpec]) -> list[TensorSpec]:
        return [TensorSpec(name=SERVED_INPUT, datatype="BYTES", shape=[-1])]

    def serving_adapter(self, spec: TextSpec) -> ServingAdapter:
        return TextServing(spec)

    body_types: ClassVar[tuple[str, ...]] = TEXT_TYPES  # one text per text/plain body

    def rows_from_body(
        self, spec: SpecBase, body: bytes, media_type: str, limits: BodyLimits
    ) -> np.ndarray:
        """A `text/plain` body (UTF-8) → one raw text."""
        assert isinstance(spec, TextSpec)
        try:
            texts = [body.decode("utf-8")]
        except UnicodeDecodeError as exc:
            raise DataError(
                f"the text/plain body is not UTF-8 (invalid byte at offset {exc.start})"
            ) from None
        return _checked(texts, spec)

    def rows_from_json(self, spec: SpecBase, rows: Any) -> np.ndarray:
        """The `instances` of `{"instances": ["a text", …]}` (or a JSON list of strings) →
        raw texts."""
        assert isinstance(spec, TextSpec)
        return _checked(texts_from_json(rows), spec)

    def token_strings(self, spec: TextSpec) -> Callable[[Any], str]:
        """ids (one text) → its tokens, space-separated ([CLS] and padding left out): what a
        model sees, for previews."""
        tokenizer = tokenizer_for(spec).tokenizer

        def decode(ids: Any) -> str:
            values = [int(v) for v in np.asarray(ids).ravel() if int(v) > 2 or int(v) == 1]
            return " ".join(tokenizer.id_to_token(v) or "?" for v in values)

        return decode

    # ---- model --------------------------------------------------------------------------
    def frontend(self, spec: TextSpec, family: str) -> dict[str, Any]:
        info = spec.tokenizer
        return {
            "kind": self.kind,
            "vocab_size": info.vocab_size,
            "pad_id": info.pad_id,
            "max_length": spec.max_length,
        }

    # ---- monitoring ---------------------------------------------------------------------
    def drift_features(self, spec: TextSpec, graph_x: np.ndarray) -> np.ndarray:
        x = np.asarray(graph_x)
        if x.dtype.kind in "OUS":  # served strings (the live monitor sees what clients sent)
            x = self.to_graph(spec, x)
        return features.text_features(spec, x)

    def drift_feature_names(self, spec: TextSpec) -> list[str]:
        return features.feature_names(spec)


class TokenBatch(BatchTransform):
    """Training's `to_graph`: texts → token ids (int64), which augmentation edits."""

    def __init__(self, spec: TextSpec) -> None:
        import torch

        self.spec = spec
        self.device = torch.device("cpu")

    def to(self, device: Any) -> TokenBatch:
        import torch

        self.device = torch.device(device)
        return self

    def load(self, raw: Any) -> Any:
        import torch

        ids = torch.from_numpy(tokenizer_for(self.spec).encode(as_texts(raw, "training texts")))
        return ids if self.device.type == "cpu" else ids.to(self.device, non_blocking=True)


def as_texts(raw: Any, what: str) -> list[str]:
    """A 1-D batch of strings (list, or numpy array of str/object) as a list of str."""
    array = np.asarray(raw, dtype=object) if not isinstance(raw, np.ndarray) else raw
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise DataError(
            f"{what}: a text batch is one string per sample (shape [N]); got shape "
            f"{list(array.shape)}"
        )
    items = array.tolist()
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise DataError(f"{what}: sample {i} is {type(item).__name__}, not text")
    return items


def texts_from_json(doc: Any) -> list[str]:
    rows = doc.get("instances") if isinstance(doc, dict) else doc
    if isinstance(rows, np.ndarray):  # numbers: the server parsed them as a float array
        raise DataError('each instance is a string: send {"instances": ["a text", …]}')
    if isinstance(rows, str):
        rows = [rows]
    if not isinstance(rows, list) or not rows:
        raise DataError('send {"instances": ["a text", …]} or a JSON list of strings')
    if len(rows) > MAX_PREDICT_TEXTS:
        raise DataError(f"{len(rows)} texts in one request; at most {MAX_PREDICT_TEXTS}")
    for i, row in enumerate(rows):
        if not isinstance(row, str):
            raise DataError(f"instance {i} is {type(row).__name__}; each instance is a string")
    return rows


def _checked(texts: list[str], spec: TextSpec) -> np.ndarray:
    out = np.empty(len(texts), dtype=object)
    out[:] = texts
    check_texts(out, spec.max_chars, "/predict")
    return out


def _stored(sha256: str, what: str) -> bytes:
    data = store.data_of(sha256)
    if data is None:
        raise PackageError(f"the {what} (sha256 {sha256[:12]}…) is not loaded; cannot package it")
    return data
