"""What the monitor watches in text, per sample and readable:

- `tokens_log2` — length: log2(1 + tokens), [CLS] and padding excluded;
- `unknown_share` — the share of [UNK] tokens (typos, another alphabet, new words);
- `band_*` — the share of tokens by training-frequency rank (ids are frequency ranks): the
  most common 100, the next 900, …, the rarest — a shift in which words are used;
- `repr_*` — the model's own pooled representation: the mean of the model's token embeddings
  over the text, on their top principal directions (a table made from the trained model's
  embedding, stored in the package beside the tokenizer).

Samples, not tokens, are the unit every test counts, so a long text cannot weigh as many.
"""

from __future__ import annotations

import io
from itertools import pairwise
from typing import Any

import numpy as np

from scaledl.contract import TextSpec
from scaledl.errors import PackageError
from scaledl.modalities.text import store

REPRESENTATION_DIMS = 8
REPRESENTATION_FILE = "text_representation.npy"


def feature_names(spec: TextSpec) -> list[str]:
    bounds = spec.frequency_bands
    bands = [f"band_top{bounds[0]}"]
    bands += [f"band_{lo}_{hi}" for lo, hi in pairwise(bounds)]
    bands.append(f"band_after{bounds[-1]}")
    dims = spec.representation.dims if spec.representation is not None else 0
    return ["tokens_log2", "unknown_share", *bands, *(f"repr_{i + 1}" for i in range(dims))]


def text_features(spec: TextSpec, ids: np.ndarray) -> np.ndarray:
    """(N, L) token ids → (N, F) float32 features named by `feature_names`."""
    info = spec.tokenizer
    ids = np.asarray(ids, dtype=np.int64)
    real = (ids != info.pad_id) & (ids != info.cls_id)
    count = real.sum(axis=1)
    per = np.maximum(count, 1).astype(np.float64)
    unknown = (real & (ids == info.unk_id)).sum(axis=1) / per
    known = real & (ids != info.unk_id)
    rank = ids - 3  # ids after the three special tokens are frequency ranks
    edges = [0, *spec.frequency_bands, np.iinfo(np.int64).max]
    bands = [(known & (rank >= lo) & (rank < hi)).sum(axis=1) / per for lo, hi in pairwise(edges)]
    columns = [np.log2(1.0 + count), unknown, *bands]
    out = np.stack(columns, axis=1)
    if spec.representation is not None:
        table = representation_table(spec)
        vectors = table[np.clip(ids, 0, len(table) - 1)] * real[..., None]
        out = np.concatenate([out, vectors.sum(axis=1) / per[:, None]], axis=1)
    return out.astype(np.float32)


# ---- the representation table ---------------------------------------------------------------
def representation_bytes(model: Any, vocab_size: int, dims: int = REPRESENTATION_DIMS) -> bytes:
    """(vocab × dims) float32: the model's token embeddings on their top principal directions
    (fitted on the real tokens' rows). Empty when the model has no such embedding."""
    import torch

    tables = [
        m.weight.detach().float().cpu().numpy()
        for m in model.modules()
        if isinstance(m, torch.nn.Embedding) and m.num_embeddings == vocab_size
    ]
    if not tables:
        return b""
    weight = tables[0].astype(np.float64)
    rows = weight[3:]
    mean = rows.mean(axis=0)
    _, _, vt = np.linalg.svd(rows - mean, full_matrices=False)
    k = min(dims, vt.shape[0])
    table = ((weight - mean) @ vt[:k].T).astype(np.float32)
    table[:3] = 0.0  # pad, unk and cls carry no word
    buffer = io.BytesIO()
    np.save(buffer, table, allow_pickle=False)
    return buffer.getvalue()


def table_dims(data: bytes) -> int:
    return int(np.load(io.BytesIO(data), allow_pickle=False).shape[1])


def representation_table(spec: TextSpec) -> np.ndarray:
    info = spec.representation
    assert info is not None
    vocab = spec.tokenizer.vocab_size

    def parse(data: bytes) -> np.ndarray:
        try:
            table = np.load(io.BytesIO(data), allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise PackageError(f"{info.file} is not a readable array ({exc})") from None
        if table.dtype != np.float32 or table.shape != (vocab, info.dims):
            raise PackageError(
                f"{info.file} holds {table.dtype}{list(table.shape)}, expected float32"
                f"[{vocab}, {info.dims}]"
            )
        return table

    table: np.ndarray = store.parsed(info.sha256, "table", parse, "token table")
    return table
