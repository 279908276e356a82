"""Old data (from the lineage), new data (split deterministically) and their union.

The union is written as one `.npz` — `x`/`y` = old train + val and new train + val, `x_test`/
`y_test` = old test + new test — and the new version's lineage names it as its data set. Its
test rows are then held out for good: the fine-tune, the optimize search (which re-splits
`x`/`y` for validation with the same seed) and every later maintenance run read the same rows,
and nothing that was ever a test row is trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scaledl.config.data import DataConfig
from scaledl.config.maintain import SplitConfig
from scaledl.data.dataset import ArraySet, DataSplits
from scaledl.errors import DataError, UsageError
from scaledl.fsio import atomic_path
from scaledl.modalities import load_data, load_splits
from scaledl.package import Package


@dataclass
class EvalSet:
    """Labelled rows the live and the new version are compared on (never trained on)."""

    name: str  # "new" | "reference"
    x: np.ndarray
    y: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.y)


def lineage_data(pkg: Package) -> tuple[DataConfig, int]:
    lineage = pkg.manifest.lineage
    data = lineage.data
    if not data:
        raise UsageError(
            f"package {pkg.source} records no data set in its lineage (lineage.data); maintain "
            "fine-tunes on the old data + the new — package the model with `scaledl train`"
        )
    return DataConfig.from_lineage(data, pkg.source), lineage.split_seed


def load_old(pkg: Package, task: str) -> tuple[DataSplits, DataConfig]:
    config, seed = lineage_data(pkg)
    try:
        return load_splits(config, seed=seed, task=task), config
    except DataError as exc:
        raise DataError(
            f"the old data set of {pkg.source} (lineage.data.source {config.source!r}) cannot "
            f"be read: {exc.message}"
        ) from None


def new_config(spec: str, template: DataConfig, split: SplitConfig) -> DataConfig:
    if not spec.strip():
        raise UsageError("--new-data is empty; give a data source (an .npz, folder, table…)")
    return template.with_source(
        spec.strip(),
        val_fraction=split.val_fraction,
        test_fraction=split.test_fraction,
        limit_per_class=None,
    )


def load_new(spec: str, template: DataConfig, split: SplitConfig, task: str) -> DataSplits:
    path = Path(spec).expanduser()
    if spec.strip() != "digits" and not path.exists():
        raise DataError(f"--new-data {spec}: no such file or folder")
    if path.suffix.lower() == ".npz" and path.is_file():
        _need_labels(path)
    config = new_config(spec, template, split)
    if template.series is not None or template.kind == "series":  # a series goes on in time
        from scaledl.maintain.series_data import new_series_config

        config = new_series_config(spec, template, split)
    try:
        return load_splits(config, seed=split.seed, task=task)
    except DataError as exc:
        raise DataError(f"--new-data {spec}: {exc.message}") from None


def load_eval(spec: str, template: DataConfig, task: str) -> EvalSet:
    """Every row of a trusted labelled data set (`--eval-data`)."""
    path = Path(spec).expanduser()
    if spec.strip() != "digits" and not path.exists():
        raise DataError(f"--eval-data {spec}: no such file or folder")
    try:
        loaded = load_data(template.with_source(spec.strip()), task)
    except DataError as exc:
        raise DataError(f"--eval-data {spec}: {exc.message}") from None
    parts = [loaded.data] + ([loaded.test] if loaded.test is not None else [])
    x = np.concatenate([p.x for p in parts])
    y = np.concatenate([p.y for p in parts])
    return EvalSet("new", x, y, f"{spec} (--eval-data, all {len(y)} rows)")


def _need_labels(path: Path) -> None:
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = set(npz.files)
    except Exception as exc:
        raise DataError(f"--new-data {path}: unreadable npz ({exc})") from None
    if "y" not in names:
        raise DataError(
            f"--new-data {path} has no labels (array 'y'); maintain fine-tunes and compares "
            "on labelled rows — `scaledl monitor report` checks unlabelled data"
        )


def check_compatible(pkg: Package, splits: DataSplits, what: str) -> None:
    """Same raw sample shape as the model and class ids within its labels."""
    raw_shape = pkg.preprocessing.sample_shape
    if splits.sample_shape != raw_shape:
        raise DataError(
            f"{what} has samples of shape {splits.sample_shape}; the model takes {raw_shape} "
            "(the raw form it was trained on)"
        )
    labels = pkg.labels or []
    if splits.labels is not None and labels and splits.labels != labels[: len(splits.labels)]:
        raise DataError(
            f"{what} has classes {splits.labels}; the model was trained on {labels}; "
            "class ids must mean the same classes"
        )
    if not labels:
        return
    top = max(int(p.y.max()) for p in (splits.train, splits.val, splits.test) if len(p))
    if top >= len(labels):
        raise DataError(f"{what} holds class id {top}; the model has {len(labels)} classes")


def eval_sets(old: DataSplits, new: DataSplits, new_source: str) -> list[EvalSet]:
    if new.kind == "series":  # the old test period becomes history the new version learns
        return [EvalSet("new", new.test.x, new.test.y, f"{new_source} (newest period)")]
    return [
        EvalSet("new", new.test.x, new.test.y, f"{new_source} (held-out split)"),
        EvalSet("reference", old.test.x, old.test.y, f"{old.source} (test split)"),
    ]


def write_union(
    path: Path, old: DataSplits, new: DataSplits, labels: list[str], template: DataConfig
) -> tuple[DataConfig, int]:
    """Old + new rows as one npz (test rows kept apart); the DataConfig that reads it back and
    how many training rows were dropped as exact copies (same x and y) of a test row — new
    data that overlaps the old would otherwise train on rows the comparison is made on.
    A time series is appended in time instead (`series_data.write_series_union`)."""
    if old.kind == "series":
        from scaledl.maintain.series_data import write_series_union

        return write_series_union(path, old, new, template)
    x, y = _stack([old.train, old.val, new.train, new.val])
    x_test, y_test = _stack([old.test, new.test])
    keep = _not_in(x, y, x_test.astype(x.dtype, copy=False), y_test)
    x, y = x[keep], y[keep]
    arrays: dict[str, Any] = {
        "x": _storable(x),
        "y": y,
        "x_test": _storable(x_test),
        "y_test": y_test,
    }
    arrays["labels"] = np.asarray(labels, dtype=str)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    config = template.model_copy(
        update={
            "source": str(Path(path).resolve()),
            "kind": old.kind,
            "image_size": None,
            "limit_per_class": None,
        }
    )
    return config, int((~keep).sum())


def _not_in(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> np.ndarray:
    """Mask of the rows of (x, y) that are not exact copies of a row of (x_test, y_test)."""
    import hashlib

    def key(row: Any, label: Any) -> bytes:
        data = row.encode("utf-8", "surrogatepass") if isinstance(row, str) else row.tobytes()
        return hashlib.blake2b(data + np.asarray(label).tobytes(), digest_size=16).digest()

    seen = {key(a, b) for a, b in zip(x_test, y_test, strict=True)}
    return np.array([key(a, b) not in seen for a, b in zip(x, y, strict=True)], dtype=bool)


def _storable(x: np.ndarray) -> np.ndarray:
    """Texts (object arrays of str) as a fixed-width unicode array: readable without pickle."""
    if x.dtype != object:
        return x
    return np.asarray([str(v) for v in x], dtype=np.str_)


def _stack(parts: list[ArraySet]) -> tuple[np.ndarray, np.ndarray]:
    same = all(p.x.dtype == parts[0].x.dtype for p in parts)
    dtype = parts[0].x.dtype if same else np.float32
    x = np.concatenate([p.x.astype(dtype, copy=False) for p in parts])
    y = np.concatenate([p.y for p in parts])
    return x, y


def all_rows(splits: DataSplits) -> tuple[np.ndarray, np.ndarray]:
    table, layout = getattr(splits, "table", None), getattr(splits, "layout", None)
    if table is not None and layout is not None:  # a series: every window once, in time order
        from scaledl.data.series.windows import all_windows

        windows = all_windows(table, layout)
        return windows.x, windows.y
    return _stack([splits.train, splits.val, splits.test])
