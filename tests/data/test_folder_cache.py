"""The decoded-folder cache is a file anyone with the cache directory could change: a truncated
file, garbage or arrays that need pickle are ignored and the images decoded again."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from scaledl.config.data import DataConfig
from scaledl.modalities import load_data
from tests.data.test_sources import make_image_folder


def _garbage(path: Path) -> None:
    path.write_bytes(b"PK\x03\x04 not a zip at all")


def _truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:100])


def _pickled(path: Path) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, x_train=np.array([{"a": 1}], dtype=object))
    path.write_bytes(buffer.getvalue())


@pytest.mark.parametrize("spoil", [_garbage, _truncated, _pickled])
def test_a_spoiled_cache_is_ignored_and_rewritten(tmp_path: Path, spoil) -> None:
    root = make_image_folder(tmp_path / "imgs")
    cfg = DataConfig(source=str(root), cache_dir=str(tmp_path / "cache"), test_fraction=0.34)
    first = load_data(cfg)
    (cached,) = (tmp_path / "cache").glob("images-*.npz")
    spoil(cached)
    again = load_data(cfg)
    assert np.array_equal(first.data.x, again.data.x) and first.labels == again.labels
    with np.load(cached, allow_pickle=False) as npz:  # decoded again and written back whole
        assert np.array_equal(npz["x_train"], first.data.x)
