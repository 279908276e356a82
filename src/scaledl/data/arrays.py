"""`.npz` files with arrays `x` and `y` (and optionally `x_test`, `y_test`, `labels`)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from scaledl.config.data import DataConfig
from scaledl.data.dataset import ArraySet, Kind, LoadedData, class_count, fingerprint_arrays
from scaledl.errors import DataError


def read_npz(path: Path, config: DataConfig, task: str) -> LoadedData:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"npz file {path} is unreadable ({exc}); object arrays are not allowed"
        ) from None
    for key in ("x", "y"):
        if key not in arrays:
            raise DataError(f"npz file {path} lacks array {key!r}; it has {sorted(arrays)}")
    kind = _kind(arrays["x"], config.kind, path)
    data = _arrayset(arrays["x"], arrays["y"], kind, task, path, "x/y")
    test = None
    if "x_test" in arrays and "y_test" in arrays:
        test = _arrayset(arrays["x_test"], arrays["y_test"], kind, task, path, "x_test/y_test")
    labels: list[str] | None = None
    if task == "classification":
        ys = np.concatenate([data.y] + ([test.y] if test is not None else []))
        if len(ys) == 0:
            raise DataError(f"npz file {path} holds no samples (x and y are empty)")
        if ys.min() < 0:
            raise DataError(f"npz file {path}: class ids in y must be non-negative integers")
        count = class_count(ys, str(path))
        if "labels" in arrays:
            labels = [str(v) for v in arrays["labels"]]
            if count > len(labels):
                raise DataError(
                    f"npz file {path}: y holds class {int(ys.max())} but labels has {len(labels)}"
                )
        else:
            labels = [str(i) for i in range(count)]
    x = data.x
    scale = 1.0 / 255.0 if x.dtype == np.uint8 else 1.0
    parts = [data.x, data.y] + ([test.x, test.y] if test is not None else [])
    return LoadedData(
        data=data,
        test=test,
        kind=kind,
        labels=labels,
        scale=scale,
        max_value=255.0 if x.dtype == np.uint8 else None,
        fingerprint=fingerprint_arrays(*parts),
        source=str(path),
    )


def _kind(x: np.ndarray, requested: str, path: Path) -> Kind:
    if requested != "auto":
        return requested  # type: ignore[return-value]
    if x.dtype.kind == "U" and x.ndim == 1:
        return "text"
    if x.ndim == 2:
        return "table"
    if x.ndim in (3, 4):
        return "image"
    raise DataError(
        f"npz file {path}: x has shape {x.shape}; expected 2-D (table) or 3/4-D (images)"
    )


def _arrayset(
    x: np.ndarray, y: np.ndarray, kind: Kind, task: str, path: Path, what: str
) -> ArraySet:
    if len(x) != len(y) or y.ndim != 1:
        raise DataError(
            f"npz file {path}: {what} shapes {x.shape} and {y.shape} do not match (N, ...) / (N,)"
        )
    if kind == "text":
        return ArraySet(_texts(x, path, what), _targets(y, task, path))
    if x.dtype.kind not in "uif" or (x.dtype.kind == "f" and not np.isfinite(x).all()):
        raise DataError(
            f"npz file {path}: {what.split('/')[0]} must be finite numbers (no NaN/Inf)"
        )
    if kind == "image":
        if x.ndim == 3:
            x = x[:, None]
        elif x.ndim == 4 and x.shape[1] not in (1, 3, 4) and x.shape[3] in (1, 3, 4):
            x = x.transpose(0, 3, 1, 2)
        elif x.ndim != 4:
            raise DataError(
                f"npz file {path}: images must be (N,H,W), (N,C,H,W) or (N,H,W,C); got {x.shape}"
            )
    elif kind == "sequence" and x.ndim != 3:
        raise DataError(f"npz file {path}: sequences must be (N, T, F); got {x.shape}")
    elif kind == "audio" and x.ndim != 2:
        raise DataError(f"npz file {path}: audio must be waveforms (N, samples); got {x.shape}")
    elif kind == "table" and x.ndim != 2:
        raise DataError(f"npz file {path}: tables must be (N, F); got {x.shape}")
    if x.dtype != np.uint8:
        x = x.astype(np.float32)
    return ArraySet(np.ascontiguousarray(x), _targets(y, task, path))


def _targets(y: np.ndarray, task: str, path: Path) -> np.ndarray:
    if task == "classification":
        if y.dtype.kind not in "iu" and not (y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0)):
            raise DataError(f"npz file {path}: y must hold integer class ids for classification")
        return y.astype(np.int64)
    return y.astype(np.float32)


def _texts(x: np.ndarray, path: Path, what: str) -> np.ndarray:
    """A 1-D unicode array of texts → an object array of str (the text modality's raw form)."""
    if x.dtype.kind != "U" or x.ndim != 1:
        raise DataError(
            f"npz file {path}: {what.split('/')[0]} must be a 1-D array of strings for text "
            f"(got {x.dtype} {list(x.shape)})"
        )
    out = np.empty(len(x), dtype=object)
    out[:] = x.tolist()
    return out
