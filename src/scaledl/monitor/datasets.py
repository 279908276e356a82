"""New data for offline checks: any foundation data source, in the raw training form.

Labels are optional here (new data is often unlabelled): an `.npz` with only `x` is accepted.
With the package's own data source, only its test split is used — the rows the model was
trained on would look "too easy" to the output tests.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scaledl.config.data import DataConfig
from scaledl.errors import DataError
from scaledl.package import Package


@dataclass
class RawData:
    x: np.ndarray
    y: np.ndarray | None
    source: str


def own_data_config(pkg: Package) -> DataConfig:
    data = pkg.manifest.lineage.data or {"source": "digits"}
    return DataConfig.from_lineage(data, pkg.source)


def resolve_data(pkg: Package, data: str | None) -> tuple[DataConfig, bool]:
    """(config, is-the-package's-own-source) for a `--data` value (None: the package's own)."""
    own = own_data_config(pkg)
    if data is None or data.strip() == own.source:
        return own, True
    return own.with_source(data.strip()), False


def load_raw(config: DataConfig, task: str, pkg: Package) -> RawData:
    """All rows of a data source (its test split if it ships one), labels when it has them."""
    from scaledl.modalities import load_data

    path = Path(config.source).expanduser()
    if path.suffix.lower() == ".npz" and path.is_file() and not _npz_has(path, "y"):
        return RawData(_unlabelled_npz(path, config, pkg), None, str(path))
    loaded = load_data(config, task)
    rows = loaded.test if loaded.test is not None else loaded.data
    if task == "classification" and loaded.labels is None:  # unlabelled texts (.txt)
        return RawData(rows.x, None, loaded.source)
    return RawData(rows.x, rows.y, loaded.source)


def load_new_data(pkg: Package, data: str | None) -> RawData:
    """`--data` for `monitor report` / checks: own source → test split, else every row."""
    from scaledl.modalities import load_splits

    task = pkg.manifest.task
    config, own = resolve_data(pkg, data)
    if own:
        seed = pkg.manifest.lineage.split_seed
        splits = load_splits(config, seed=seed, task=task)
        return RawData(splits.test.x, splits.test.y, f"{config.source} (test split)")
    return load_raw(config, task, pkg)


def _npz_has(path: Path, key: str) -> bool:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return key in npz.files
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"npz file {path} is unreadable ({exc})") from None


def _unlabelled_npz(path: Path, config: DataConfig, pkg: Package) -> np.ndarray:
    from scaledl.data.arrays import _arrayset, _kind

    with np.load(path, allow_pickle=False) as npz:
        if "x" not in npz.files:
            raise DataError(f"npz file {path} lacks array 'x'; it has {sorted(npz.files)}")
        x = npz["x"]
    spec = pkg.manifest.preprocessing
    expected = spec.kind if spec is not None else "auto"
    kind = _kind(x, config.kind if config.kind != "auto" else expected, path)
    dummy = np.zeros(len(x), dtype=np.float32)
    return _arrayset(x, dummy, kind, "regression", path, "x").x
