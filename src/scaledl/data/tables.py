"""CSV/TSV/Parquet tables: one label column, every other column numeric."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from scaledl.config.data import DataConfig
from scaledl.data.dataset import ArraySet, LoadedData, fingerprint_arrays
from scaledl.errors import DataError


def read_table(path: Path, config: DataConfig, task: str) -> LoadedData:
    columns, rows, first_line = _read_rows(path)
    label_col = config.label_column
    if label_col not in columns:
        raise DataError(
            f"table {path} has no label column {label_col!r}; columns are {columns} "
            "(set data.label_column)"
        )
    if not rows:
        raise DataError(f"table {path} has a header but no rows")
    li = columns.index(label_col)
    features = [c for c in columns if c != label_col]
    if not features:
        raise DataError(f"table {path} has only the label column; it needs feature columns")
    x = np.empty((len(rows), len(features)), np.float32)
    for r, row in enumerate(rows):
        if len(row) != len(columns):
            raise DataError(
                f"table {path}, row {r + first_line}: {len(row)} cells, header has {len(columns)}"
            )
        j = 0
        for c, cell in enumerate(row):
            if c == li:
                continue
            x[r, j] = _number(cell, path, features[j], r + first_line)
            j += 1
    raw_labels = [row[li] for row in rows]
    y, labels = _targets(raw_labels, task, path, label_col, first_line)
    return LoadedData(
        data=ArraySet(x, y),
        kind="table",
        labels=labels,
        scale=1.0,
        fingerprint=fingerprint_arrays(x, y),
        source=str(path),
        feature_names=features,
    )


def read_columns(path: Path) -> tuple[list[str], list[list[object]], int]:
    """(column names, rows of cells, line number of the first data row) of a CSV/TSV/Parquet."""
    return _read_rows(path)


def _read_rows(path: Path) -> tuple[list[str], list[list[object]], int]:
    """(column names, rows of cells, line number of the first data row)."""
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise DataError(
                "reading .parquet needs pyarrow: pip install 'scaledl[parquet]'"
            ) from None
        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises many types for corrupt files
            raise DataError(f"parquet file {path} is unreadable ({exc})") from None
        cols = table.column_names
        data = table.to_pydict()
        return cols, [[data[c][i] for c in cols] for i in range(table.num_rows)], 1
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh, delimiter=delimiter)
            header = next(reader, None)
            rows: list[list[object]] = [list(row) for row in reader if row]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"table {path} is unreadable ({exc})") from None
    if not header:
        raise DataError(f"table {path} is empty; expected a header row and data rows")
    return [h.strip() for h in header], rows, 2


def _number(cell: object, path: Path, column: str, row: int) -> float:
    try:
        value = float(cell)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DataError(
            f"table {path}, column {column!r}, row {row}: {cell!r} is not a number"
        ) from None
    if not math.isfinite(value):
        raise DataError(f"table {path}, column {column!r}, row {row}: value is {cell!r} (NaN/Inf)")
    return value


def _targets(
    raw: list[object], task: str, path: Path, column: str, first_line: int
) -> tuple[np.ndarray, list[str] | None]:
    if task == "regression":
        y = np.array(
            [_number(v, path, column, i + first_line) for i, v in enumerate(raw)], np.float32
        )
        return y, None
    for i, v in enumerate(raw):
        if v is None or str(v).strip() == "" or str(v).lower() == "nan":
            raise DataError(f"table {path}, column {column!r}, row {i + first_line}: missing label")
    texts = [str(v).strip() for v in raw]
    try:  # numeric labels sort numerically ("2" before "10")
        uniq = sorted(set(texts), key=float)
    except ValueError:
        uniq = sorted(set(texts))
    index = {label: i for i, label in enumerate(uniq)}
    return np.array([index[t] for t in texts], np.int64), uniq
