"""The old + new union: test rows kept apart and never trained on."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scaledl.config.maintain import SplitConfig
from scaledl.data import DataConfig
from scaledl.maintain.datasets import load_new, write_union
from scaledl.modalities import load_splits


def rows(x: np.ndarray, y: np.ndarray) -> set[bytes]:
    return {a.astype(np.float32).tobytes() + bytes([int(b)]) for a, b in zip(x, y, strict=True)}


def test_union_keeps_both_test_splits_and_drops_copies_of_them(tmp_path: Path) -> None:
    old = load_splits(DataConfig(source="digits"), seed=0)
    # The same digits as "new" data, split another way: some of its training rows are old
    # test rows — training on them would flatter the new version on the comparison.
    new = load_new("digits", DataConfig(source="digits"), SplitConfig(seed=5), "classification")
    labels = [str(i) for i in range(10)]
    config, dropped = write_union(tmp_path / "u.npz", old, new, labels, DataConfig())
    assert dropped > 0
    union = load_splits(config, seed=0)
    assert len(union.test) == len(old.test) + len(new.test)
    assert np.array_equal(union.test.x[: len(old.test)].astype(np.uint8), old.test.x)
    trained = rows(
        np.concatenate([union.train.x, union.val.x]), np.concatenate([union.train.y, union.val.y])
    )
    assert not trained & rows(union.test.x, union.test.y)
    total = sum(len(p) for p in (old.train, old.val, new.train, new.val))
    assert len(union.train) + len(union.val) == total - dropped
    assert union.labels == labels and union.kind == "image"
