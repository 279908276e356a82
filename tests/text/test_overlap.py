"""Validation text the model already read: SST-2-style phrase rows are flagged, new text is not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scaledl.config.data import DataConfig
from scaledl.modalities import load_splits, modality
from scaledl.modalities.text import overlap
from scaledl.modalities.text.overlap import share_inside

WORDS = np.array(["the", "a", "film", "plot", "cast", "story", "slow", "warm", "dull", "bright"])


def _sentences(count: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    # a fixed-width number keeps any sentence from occurring inside another
    return [f"review {seed}{i:05d} " + " ".join(rng.choice(WORDS, 8)) for i in range(count)]


def _write(folder: Path, rows: list[str], dev: list[str]) -> Path:
    folder.mkdir()
    for name, texts in (("train.tsv", rows), ("dev.tsv", dev)):
        lines = [f"{text}\t{len(text) % 2}\n" for text in texts]
        (folder / name).write_text("sentence\tlabel\n" + "".join(lines), encoding="utf-8")
    return folder / "train.tsv"


def _seen_share(train: Path) -> float | None:
    config = DataConfig(source=str(train), val_fraction=0.2, text={"test_source": "dev.tsv"})
    splits = load_splits(config, seed=0)
    return modality(splits.kind).seen_in_training(splits)


def test_phrase_rows_of_training_sentences_are_seen_and_new_sentences_are_not(
    tmp_path: Path,
) -> None:
    sentences = _sentences(150, seed=1)
    # like SST-2: every sentence with its phrases (word spans) as rows of their own
    phrases = [" ".join(s.split()[i : i + 4]) for s in sentences for i in range(1, 7, 2)]
    seen = _seen_share(_write(tmp_path / "phrases", sentences + phrases, _sentences(40, 2)))
    assert seen is not None and seen >= 0.5
    fresh = _seen_share(_write(tmp_path / "sentences", sentences, _sentences(40, 2)))
    assert fresh == 0.0


def test_the_share_is_of_rows_inside_rows_never_across_two() -> None:
    rows = ["a warm film", "slow plot"]
    assert share_inside(["warm film", "slow plot"], rows) == 1.0
    assert share_inside(["film slow"], rows) == 0.0  # the end of one row and the next's start
    assert share_inside(["film\x00slow"], rows) == 0.0
    assert share_inside([""], rows) == 0.0
    assert share_inside([], rows) is None and share_inside(["x"], []) is None


def test_training_rows_too_large_to_search_are_not_searched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(overlap, "MAX_JOINED_CHARS", 10)
    assert share_inside(["warm"], ["a warm film", "slow plot"]) is None
