"""MNIST-style IDX files, gzipped or not: `*-images-idx3-ubyte[.gz]` + `*-labels-idx1-ubyte`."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np

from scaledl.data.config import DataConfig
from scaledl.data.dataset import ArraySet, LoadedData, class_count, fingerprint_arrays
from scaledl.errors import DataError

_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IMAGES = re.compile(r"images[-_.]idx3", re.IGNORECASE)
_TEST_PREFIX = re.compile(r"^(t10k|test)", re.IGNORECASE)


def looks_like_idx(path: Path) -> bool:
    return bool(re.search(r"idx\d", path.name, re.IGNORECASE)) or path.name.endswith("-ubyte")


def read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"IDX file {path} is unreadable ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise DataError(f"IDX file {path} has no valid IDX header (magic 00 00 <type> <ndim>)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"IDX file {path} is truncated or corrupt: header says shape {dims} "
            f"({expected} bytes of data), file holds {len(raw) - header}"
        )
    return (
        np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))
    )


def find_idx_pairs(folder: Path) -> list[tuple[Path, Path]]:
    pairs = []
    for images in sorted(folder.iterdir()):
        if images.is_file() and _IMAGES.search(images.name):
            labels = _labels_for(images)
            if labels is not None:
                pairs.append((images, labels))
    return pairs


def _labels_for(images: Path) -> Path | None:
    name = re.sub("images", "labels", images.name, flags=re.IGNORECASE)
    name = re.sub("idx3", "idx1", name, flags=re.IGNORECASE)
    candidate = images.with_name(name)
    return candidate if candidate.is_file() else None


def read_idx_folder(folder: Path, config: DataConfig, task: str) -> LoadedData:
    train: list[ArraySet] = []
    test: list[ArraySet] = []
    for images, labels in find_idx_pairs(folder):
        part = _read_pair(images, labels)
        (test if _TEST_PREFIX.match(images.name) else train).append(part)
    if not train:
        raise DataError(
            f"IDX folder {folder}: no training images (e.g. train-images-idx3-ubyte.gz)"
        )
    return _loaded(str(folder), _concat(train), _concat(test) if test else None)


def read_idx_file(images: Path, config: DataConfig, task: str) -> LoadedData:
    labels = _labels_for(images)
    if labels is None:
        raise DataError(f"IDX images {images} has no labels file beside it (…labels-idx1-ubyte…)")
    return _loaded(str(images), _read_pair(images, labels), None)


def _read_pair(images: Path, labels: Path) -> ArraySet:
    x, y = read_idx(images), read_idx(labels)
    if x.ndim not in (3, 4) or y.ndim != 1 or len(x) != len(y):
        raise DataError(
            f"IDX pair {images.name}/{labels.name}: images shape {x.shape}, "
            f"labels shape {y.shape}; "
            "expected (N, H, W) images and N labels"
        )
    x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
    return ArraySet(np.ascontiguousarray(x), y.astype(np.int64))


def _concat(parts: list[ArraySet]) -> ArraySet:
    return ArraySet(np.concatenate([p.x for p in parts]), np.concatenate([p.y for p in parts]))


def _loaded(source: str, data: ArraySet, test: ArraySet | None) -> LoadedData:
    classes = np.unique(np.concatenate([data.y] + ([test.y] if test is not None else [])))
    if classes.min() < 0:
        raise DataError(f"IDX data {source}: labels must be non-negative class ids")
    n = class_count(classes, source)
    scale = 1.0 / 255.0 if data.x.dtype == np.uint8 else 1.0
    arrays = [data.x, data.y] + ([test.x, test.y] if test is not None else [])
    return LoadedData(
        data=data,
        test=test,
        kind="image",
        labels=[str(i) for i in range(n)],
        scale=scale,
        max_value=255.0 if scale != 1.0 else None,
        fingerprint=fingerprint_arrays(*arrays),
        source=source,
    )
