"""In-memory data sets, deterministic stratified splits and fingerprints."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from scaledl.errors import DataError

if TYPE_CHECKING:
    from scaledl.config.data import DataConfig

log = logging.getLogger(__name__)
Kind = Literal["image", "table", "sequence", "audio", "series", "text"]
MAX_CLASSES = 100_000


def class_count(y: np.ndarray, source: str) -> int:
    """Classes 0..max(y) for integer class ids; an absurd id (a value, not a class) is an error
    instead of a list of a trillion labels."""
    top = int(y.max()) if len(y) else -1
    if top >= MAX_CLASSES:
        raise DataError(
            f"data {source}: class id {top} in the labels; at most {MAX_CLASSES:,} classes "
            "(ids 0, 1, 2, …). If the labels are values to predict, set task: regression"
        )
    return top + 1


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
    config: DataConfig | None = None  # how the source was read (a modality's nested knobs)


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
    config: DataConfig | None = None  # how the source was read (a modality's nested knobs)
    # how rows were kept together across the split (None: each row on its own), e.g. text
    # phrases with their sentence; cross-fitting's folds do not know the groups
    grouped: str | None = None
    # with `grouped`: each training row's group (the source row heading it) and whether the row
    # is that head (a whole sentence); cross-fitting cuts its folds by group and judges heads
    train_group: np.ndarray | None = None
    train_head: np.ndarray | None = None

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


def grouped_split(
    y: np.ndarray, group: np.ndarray, fractions: tuple[float, ...], seed: int, stratify: bool
) -> list[np.ndarray]:
    """`stratified_split` of whole groups (`group[i]`: the row heading row i's group).

    The heads are split (stratified by their own label); the last part (training) takes every
    row of its groups, the held-out parts only their heads: a held-out group's other rows are
    pieces of its head, neither new text to judge by nor allowed into training."""
    heads = np.flatnonzero(group == np.arange(len(group)))
    parts = [heads[p] for p in stratified_split(y[heads], fractions, seed, stratify)]
    return [*parts[:-1], np.flatnonzero(np.isin(group, parts[-1]))]


def _in_groups(group: np.ndarray | None) -> str:
    if group is None:
        return ""
    return f" in {int(np.sum(group == np.arange(len(group))))} groups"


def min_rows_per_class(fractions: tuple[float, ...]) -> int:
    """The fewest rows a class needs for `stratified_split` to put one in every part."""
    for n in range(1, 100_000):
        counts = [round(f * n) for f in fractions if f > 0]  # a 0 share is meant to be empty
        if min(counts, default=1) >= 1 and n - sum(counts) >= 1:
            return n
    return 100_000


def check_class_sizes(
    loaded: LoadedData, fractions: tuple[float, ...], what: str, allow_small: bool
) -> None:
    """A class too small to reach every split is an error naming it: it is usually a stray or
    mistyped label, and would otherwise become a class the model can never learn or be scored
    on. `data.allow_small_classes: true` turns the error into a warning."""
    if loaded.labels is None or len(loaded.data) == 0:
        return
    need = min_rows_per_class(fractions)
    counts = np.bincount(loaded.data.y, minlength=len(loaded.labels))
    small = [(loaded.labels[c], int(n)) for c, n in enumerate(counts) if 0 < n < need]
    empty = [loaded.labels[c] for c, n in enumerate(counts) if n == 0]
    if empty:
        log.warning("data %s: class(es) %s have no training rows", loaded.source, empty[:10])
    if not small:
        return
    named = ", ".join(f"{label!r} has {n} row{'s' if n > 1 else ''}" for label, n in small[:5])
    more = f" (and {len(small) - 5} more)" if len(small) > 5 else ""
    if len(small) > len(counts) // 2:
        more += "; most classes are that small: if the labels are values, set task: regression"
    message = (
        f"data {loaded.source}: class {named}{more}; a stratified split with {what} needs at "
        f"least {need} rows per class so that every split gets one. It is usually a stray or "
        "mistyped label: fix the data, or set data.allow_small_classes: true "
        "(--set data.allow_small_classes=true) to train with it anyway"
    )
    if not allow_small:
        raise DataError(message)
    log.warning("%s", message.split("; ")[0] + " (allowed by data.allow_small_classes)")


def make_splits(
    loaded: LoadedData,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    classification: bool,
    allow_small_classes: bool = False,
    group: np.ndarray | None = None,
    grouped: str | None = None,
) -> DataSplits:
    """Train/validation/test splits. A predefined test split is kept as is.

    `group` (row i's group head per row) keeps groups whole (`grouped_split`); `grouped` says
    what the groups are, for reports."""
    data = loaded.data

    def split(fractions: tuple[float, ...]) -> list[np.ndarray]:
        if group is None:
            return stratified_split(data.y, fractions, seed, classification)
        return grouped_split(data.y, group, fractions, seed, classification)

    if classification:
        fractions = (val_fraction,) if loaded.test is not None else (test_fraction, val_fraction)
        what = f"val_fraction={val_fraction}" + (
            "" if loaded.test is not None else f", test_fraction={test_fraction}"
        )
        check_class_sizes(loaded, fractions, what, allow_small_classes)
    if loaded.test is not None:
        val_idx, train_idx = split((val_fraction,))
        train, val, test = data.take(train_idx), data.take(val_idx), loaded.test
        used = len(train) + len(val)
    else:
        test_idx, val_idx, train_idx = split((test_fraction, val_fraction))
        train, val, test = data.take(train_idx), data.take(val_idx), data.take(test_idx)
        used = len(train) + len(val) + len(test)
    for name, part in (("train", train), ("validation", val), ("test", test)):
        if len(part) == 0:
            raise DataError(
                f"data {loaded.source}: the {name} split is empty "
                f"({len(data)} rows{_in_groups(group)}; val_fraction={val_fraction}, "
                f"test_fraction={test_fraction})"
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
        sizes={
            "train": len(train),
            "val": len(val),
            "test": len(test),
            **({"unused": len(data) - used} if group is not None else {}),
        },
        config=loaded.config,
        grouped=grouped,
        train_group=group[train_idx] if group is not None else None,
        train_head=group[train_idx] == train_idx if group is not None else None,
    )
