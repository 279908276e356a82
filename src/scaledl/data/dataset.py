"""In-memory data sets, deterministic stratified splits and fingerprints."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from scaledl.errors import DataError

Kind = Literal["image", "table", "sequence", "text"]


@dataclass
class ArraySet:
    """Raw samples `x` (N, ...) and targets `y` (N,): int64 class ids or float32 values."""

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise DataError(f"{len(self.x)} samples but {len(self.y)} targets")

    def __len__(self) -> int:
        return len(self.x)

    def take(self, index: np.ndarray) -> ArraySet:
        return ArraySet(self.x[index], self.y[index])


@dataclass
class LoadedData:
    """What a source returns: all rows, plus a predefined test split when the source has one."""

    data: ArraySet
    kind: Kind
    labels: list[str] | None
    scale: float
    fingerprint: str
    source: str
    test: ArraySet | None = None
    feature_names: list[str] | None = None
    max_value: float | None = None
    # the modality's recipe section the source was read with (text: data.text), for `fit`
    modality_config: Any = None


@dataclass
class DataSplits:
    train: ArraySet
    val: ArraySet
    test: ArraySet
    kind: Kind
    labels: list[str] | None
    scale: float
    fingerprint: str
    source: str
    feature_names: list[str] | None = None
    max_value: float | None = None
    split_seed: int = 0
    sizes: dict[str, int] = field(default_factory=dict)
    modality_config: Any = None

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])

    @property
    def num_classes(self) -> int | None:
        return len(self.labels) if self.labels is not None else None


def fingerprint_arrays(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for arr in arrays:
        arr = np.ascontiguousarray(arr)
        digest.update(str((arr.dtype.str, arr.shape)).encode())
        if arr.dtype == object:  # texts: hash their UTF-8 (the array itself holds pointers)
            for item in arr.ravel():
                encoded = str(item).encode("utf-8", "surrogatepass")
                digest.update(len(encoded).to_bytes(8, "little") + encoded)
        else:
            digest.update(arr.tobytes())
    return digest.hexdigest()[:16]


def stratified_split(
    y: np.ndarray, fractions: tuple[float, ...], seed: int, stratify: bool = True
) -> list[np.ndarray]:
    """Split row indices into len(fractions)+1 parts; the last part takes the rest.

    Each class is shuffled with the seed and cut in the same proportions, so every part keeps
    the class balance; the result depends only on (y, fractions, seed).
    """
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if stratify else [np.arange(len(y))]
    for idx in groups:
        idx = rng.permutation(idx)
        start = 0
        for i, frac in enumerate(fractions):
            count = round(frac * len(idx))
            parts[i].append(idx[start : start + count])
            start += count
        parts[-1].append(idx[start:])
    return [np.sort(np.concatenate(p)) if p else np.array([], dtype=np.int64) for p in parts]


def make_splits(
    loaded: LoadedData, val_fraction: float, test_fraction: float, seed: int, classification: bool
) -> DataSplits:
    """Train/validation/test splits. A predefined test split is kept as is."""
    data = loaded.data
    if loaded.test is not None:
        val_idx, train_idx = stratified_split(data.y, (val_fraction,), seed, classification)
        train, val, test = data.take(train_idx), data.take(val_idx), loaded.test
    else:
        test_idx, val_idx, train_idx = stratified_split(
            data.y, (test_fraction, val_fraction), seed, classification
        )
        train, val, test = data.take(train_idx), data.take(val_idx), data.take(test_idx)
    for name, part in (("train", train), ("validation", val), ("test", test)):
        if len(part) == 0:
            raise DataError(
                f"data {loaded.source}: the {name} split is empty "
                f"({len(data)} rows; val_fraction={val_fraction}, test_fraction={test_fraction})"
            )
    return DataSplits(
        train=train,
        val=val,
        test=test,
        kind=loaded.kind,
        labels=loaded.labels,
        scale=loaded.scale,
        fingerprint=loaded.fingerprint,
        source=loaded.source,
        feature_names=loaded.feature_names,
        max_value=loaded.max_value,
        split_seed=seed,
        sizes={"train": len(train), "val": len(val), "test": len(test)},
        modality_config=loaded.modality_config,
    )
