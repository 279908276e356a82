"""Data sources: `load_data(config, task)` picks the reader from the `source` string."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from scaledl.data.config import DataConfig
from scaledl.data.dataset import ArraySet, LoadedData, fingerprint_arrays
from scaledl.errors import DataError

log = logging.getLogger(__name__)

Reader = Callable[[Path, DataConfig, str], LoadedData]
TABLE_SUFFIXES = {".csv", ".tsv", ".parquet", ".pq"}


def load_digits_data() -> LoadedData:
    """scikit-learn's bundled handwritten digits: 1,797 8×8 images, values 0–16, no download."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype(np.uint8)[:, None, :, :]
    y = bunch.target.astype(np.int64)
    return LoadedData(
        data=ArraySet(x, y),
        kind="image",
        labels=[str(int(t)) for t in bunch.target_names],
        scale=1.0 / 16.0,
        max_value=16.0,
        fingerprint=fingerprint_arrays(x, y),
        source="digits",
    )


def load_data(config: DataConfig, task: str = "classification") -> LoadedData:
    """Read the data set named by `config.source`; errors name the input and what is valid."""
    spec = config.source.strip()
    if not spec:
        raise DataError(
            "data.source is empty; give `digits`, a folder, or a .csv/.parquet/.npz/IDX file"
        )
    if spec == "digits":
        loaded = load_digits_data()
    else:
        path = Path(spec).expanduser()
        if not path.exists():
            raise DataError(
                f"data source {spec!r} does not exist; expected `digits`, an image folder, "
                "an IDX folder/file, or a .csv/.parquet/.npz file"
            )
        loaded = _reader_for(path)(path, config, task)
    if len(loaded.data) == 0:
        raise DataError(f"data source {spec!r} holds no samples")
    if task == "classification" and loaded.labels is not None and len(loaded.labels) < 2:
        raise DataError(f"data source {spec!r} has {len(loaded.labels)} class; need at least 2")
    log.info("loaded %s: %d rows (%s)", spec, len(loaded.data), loaded.kind)
    return loaded


def _reader_for(path: Path) -> Reader:
    from scaledl.data import arrays, idx, images, tables

    if path.is_dir():
        if idx.find_idx_pairs(path):
            return idx.read_idx_folder
        return images.read_image_folder
    suffix = path.suffix.lower()
    if suffix in TABLE_SUFFIXES:
        return tables.read_table
    if suffix == ".npz":
        return arrays.read_npz
    if idx.looks_like_idx(path):
        return idx.read_idx_file
    raise DataError(
        f"data source {path} has an unknown type {suffix or '(no suffix)'}; valid: `digits`, "
        "an image folder, an IDX folder/file (*-ubyte[.gz]), .csv, .tsv, .parquet, .npz"
    )
