"""Serving raw text: clients send BYTES strings, the graph reads int64 token ids.

On the event loop only cheap checks run (`check`: a string per sample, not empty, not longer
than the package's `max_chars`). Tokenizing and running happen in the batch runner thread
(`run`): the batch is tokenized once, ordered by length and cut into buckets of similar length,
each bucket padded only to its own longest text and run separately — so one long text does not
make a batch of short ones pay for its padding. Outputs come back in request order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scaledl.contract import TextSpec
from scaledl.errors import DataError, PayloadTooLargeError
from scaledl.modalities.base import ServingAdapter

SERVED_INPUT = "text"
BUCKET_GROWTH = 2.0  # a bucket holds texts up to twice (+ BUCKET_SLACK) its shortest one
BUCKET_SLACK = 8


class TextServing(ServingAdapter):
    def __init__(self, spec: TextSpec, served_input: str = SERVED_INPUT) -> None:
        self.spec = spec
        self.served_input = served_input

    def check(self, inputs: dict[str, np.ndarray]) -> None:
        texts = inputs.get(self.served_input)
        if texts is None:  # the signature check names missing inputs first
            return
        check_texts(texts.ravel(), self.spec.max_chars, f"input {self.served_input!r}")

    def served(self, raw: Any) -> dict[str, np.ndarray]:
        texts = np.asarray(raw, dtype=object).ravel()
        return {self.served_input: texts}

    def run(self, session: Any, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        from scaledl.modalities.text.tokenizer import tokenizer_for

        texts = inputs[self.served_input].ravel()
        graph_input = session.get_inputs()[0].name
        ids = tokenizer_for(self.spec).encode(texts)
        lengths = (ids != self.spec.tokenizer.pad_id).sum(axis=1)
        buckets = length_buckets(lengths)
        if len(buckets) == 1:
            return list(session.run(None, {graph_input: ids}))
        results: list[list[np.ndarray]] = []
        for rows in buckets:
            width = int(lengths[rows].max())
            feed = np.ascontiguousarray(ids[rows, :width])
            results.append(list(session.run(None, {graph_input: feed})))
        order = np.concatenate(buckets)
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        return [np.concatenate(parts)[inverse] for parts in zip(*results, strict=True)]


def length_buckets(lengths: np.ndarray) -> list[np.ndarray]:
    """Row indices grouped by similar length (one group when the lengths are close)."""
    order = np.argsort(lengths, kind="stable")
    groups: list[list[int]] = []
    shortest = -1
    for row in order.tolist():
        length = int(lengths[row])
        if not groups or length > BUCKET_GROWTH * shortest + BUCKET_SLACK:
            groups.append([])
            shortest = length
        groups[-1].append(row)
    return [np.asarray(g, dtype=np.int64) for g in groups]


def check_texts(texts: np.ndarray, max_chars: int, what: str) -> None:
    """Refuse a non-string, an empty text or one over `max_chars`, naming its position."""
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise DataError(f"{what}: element {i} is not text (send UTF-8 strings)")
        if len(text) > max_chars:
            raise PayloadTooLargeError(
                f"{what}: text {i} has {len(text):,} characters; this model accepts at most "
                f"{max_chars:,} (its data.text.max_chars)"
            )
        if not text.strip():
            raise DataError(f"{what}: text {i} is empty; send at least one word")
