"""Text data: a text column and a label column of CSV/TSV/Parquet/JSON-lines files, or `.txt`
files of one unlabelled text per line.

Texts are kept as an object array of Python `str` (a fixed-width unicode array would take
4 × the longest text's length for every row). A bad row is named by file and line (row for
Parquet): a missing or empty text, a missing label, a line with the wrong number of fields,
bytes that are not valid in the file's encoding.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scaledl.config.data import DataConfig
from scaledl.config.text import TextConfig
from scaledl.data.dataset import ArraySet, LoadedData, fingerprint_arrays
from scaledl.errors import DataError

TEXT_SUFFIXES = {".csv", ".tsv", ".parquet", ".pq", ".jsonl", ".ndjson", ".txt"}
FIELD_LIMIT = 1 << 24  # characters in one CSV field (csv's default of 131,072 is too small)


@dataclass
class TextRows:
    texts: list[str]
    labels: list[object] | None  # None: the file has no labels (.txt)
    lines: list[int]  # the line (or row) each sample came from, for error messages


def text_format(path: Path, config: TextConfig) -> str:
    if config.format != "auto":
        return config.format
    suffix = path.suffix.lower()
    return {
        ".tsv": "tsv",
        ".parquet": "parquet",
        ".pq": "parquet",
        ".jsonl": "jsonl",
        ".ndjson": "jsonl",
        ".txt": "txt",
    }.get(suffix, "csv")


def read_text_data(path: Path, config: DataConfig, task: str) -> LoadedData:
    """A text file (and `text.test_source`, if set) → raw texts and targets."""
    text = config.text or TextConfig()
    rows = read_text_rows(path, text, config.label_column)
    test_rows = None
    if text.test_source:
        test_path = resolve_beside(text.test_source, path)
        test_rows = read_text_rows(test_path, text, config.label_column)
        if (rows.labels is None) != (test_rows.labels is None):
            raise DataError(f"text files {path} and {test_path}: one has labels, the other not")
    data_x = _object_array(rows.texts)
    if rows.labels is None:
        if task != "classification":
            raise DataError(f"text file {path} has no targets; regression needs a label column")
        fill = np.full(len(rows.texts), -1, np.int64)
        test = None
        if test_rows is not None:
            test = ArraySet(_object_array(test_rows.texts), np.full(len(test_rows.texts), -1))
        return _loaded(path, ArraySet(data_x, fill), test, None, config)
    raw = rows.labels + (test_rows.labels or [] if test_rows is not None else [])
    lines = rows.lines + (test_rows.lines if test_rows else [])
    y, labels = _targets(raw, lines, task, path, config.label_column)
    data = ArraySet(data_x, y[: len(rows.texts)])
    test = None
    if test_rows is not None:
        test = ArraySet(_object_array(test_rows.texts), y[len(rows.texts) :])
    return _loaded(path, data, test, labels, config)


def resolve_beside(name: str, anchor: Path) -> Path:
    """A relative `test_source` beside the training file, else as given (relative to cwd)."""
    candidate = Path(name).expanduser()
    if not candidate.is_absolute() and (anchor.parent / candidate).is_file():
        return anchor.parent / candidate
    if not candidate.is_file():
        raise DataError(
            f"data.text.test_source {name!r} does not exist (looked beside {anchor} and in the "
            "working folder)"
        )
    return candidate


def read_text_rows(path: Path, config: TextConfig, label_column: str) -> TextRows:
    fmt = text_format(path, config)
    if fmt == "parquet":
        return _check(_parquet_rows(path, config, label_column), path)
    if fmt == "txt":
        texts = _decoded(path, config.encoding).splitlines()
        rows = TextRows(texts, None, list(range(1, len(texts) + 1)))
        return _check(rows, path)
    content = _decoded(path, config.encoding)
    if fmt == "jsonl":
        return _check(_jsonl_rows(content, path, config, label_column), path)
    return _check(_csv_rows(content, path, config, label_column, fmt), path)


def _decoded(path: Path, encoding: str) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"text file {path} is unreadable ({exc.strerror})") from None
    try:
        return data.decode(encoding)
    except LookupError:
        raise DataError(f"data.text.encoding {encoding!r} is not a known encoding") from None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"text file {path}, line {line}: bytes that are not valid {encoding} "
            "(set data.text.encoding)"
        ) from None


def _csv_rows(
    content: str, path: Path, config: TextConfig, label_column: str, fmt: str
) -> TextRows:
    delimiter = config.delimiter or ("\t" if fmt == "tsv" else ",")
    quoting = config.quoting
    if quoting == "auto":
        quoting = "none" if fmt == "tsv" else "csv"
    csv.field_size_limit(FIELD_LIMIT)
    reader = csv.reader(
        io.StringIO(content, newline=""),
        delimiter=delimiter,
        quoting=csv.QUOTE_NONE if quoting == "none" else csv.QUOTE_MINIMAL,
    )
    try:
        header = next(reader, None)
        if not header:
            raise DataError(f"text file {path} is empty; expected a header row and data rows")
        columns = [h.strip() for h in header]
        text_i, label_i = _columns(columns, config, label_column, path)
        texts: list[str] = []
        labels: list[object] | None = [] if label_i is not None else None
        lines: list[int] = []
        start = reader.line_num + 1
        for row in reader:
            if not row:
                start = reader.line_num + 1
                continue
            if len(row) != len(columns):
                raise DataError(
                    f"text file {path}, line {start}: {len(row)} field(s), the header has "
                    f"{len(columns)} (delimiter {delimiter!r}, quoting {quoting}; "
                    "set data.text.delimiter / quoting)"
                )
            texts.append(row[text_i])
            if labels is not None and label_i is not None:
                labels.append(row[label_i])
            lines.append(start)
            start = reader.line_num + 1
    except csv.Error as exc:
        raise DataError(f"text file {path}, line {reader.line_num}: {exc}") from None
    return TextRows(texts, labels, lines)


def _columns(
    columns: list[str], config: TextConfig, label_column: str, path: Path
) -> tuple[int, int | None]:
    """(text column index, label column index or None when the file has no labels)."""
    label_i = columns.index(label_column) if label_column in columns else None
    if config.text_column is not None:
        if config.text_column not in columns:
            raise DataError(
                f"text file {path} has no column {config.text_column!r}; columns are {columns} "
                "(set data.text.text_column)"
            )
        text_i = columns.index(config.text_column)
    else:
        others = [i for i, c in enumerate(columns) if i != label_i]
        if len(others) != 1:
            raise DataError(
                f"text file {path} has columns {columns}; name the text column with "
                "data.text.text_column"
            )
        text_i = others[0]
    if label_i is None:
        raise DataError(
            f"text file {path} has no label column {label_column!r}; columns are {columns} "
            "(set data.label_column; unlabelled texts go in a .txt file, one per line)"
        )
    return text_i, label_i


def _jsonl_rows(content: str, path: Path, config: TextConfig, label_column: str) -> TextRows:
    text_key = config.text_column or "text"
    texts: list[str] = []
    labels: list[object] = []
    lines: list[int] = []
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"text file {path}, line {number}: not valid JSON ({exc.msg})"
            ) from None
        if not isinstance(doc, dict):
            raise DataError(f"text file {path}, line {number}: expected a JSON object")
        text = doc.get(text_key)
        if not isinstance(text, str):
            raise DataError(
                f"text file {path}, line {number}: no string field {text_key!r} "
                "(set data.text.text_column)"
            )
        if label_column not in doc:
            raise DataError(
                f"text file {path}, line {number}: no label field {label_column!r} "
                "(set data.label_column)"
            )
        texts.append(text)
        labels.append(doc[label_column])
        lines.append(number)
    return TextRows(texts, labels, lines)


def _parquet_rows(path: Path, config: TextConfig, label_column: str) -> TextRows:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError("reading .parquet needs pyarrow: pip install 'scaledl[parquet]'") from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises many types for corrupt files
        raise DataError(f"parquet file {path} is unreadable ({exc})") from None
    columns = list(table.column_names)
    text_i, label_i = _columns(columns, config, label_column, path)
    texts: list[Any] = table.column(columns[text_i]).to_pylist()
    for row, value in enumerate(texts, start=1):
        if value is not None and not isinstance(value, str):
            raise DataError(
                f"parquet file {path}, row {row}: column {columns[text_i]!r} holds "
                f"{type(value).__name__}, not text"
            )
    labels = table.column(columns[label_i]).to_pylist() if label_i is not None else None
    return TextRows(texts, labels, list(range(1, len(texts) + 1)))


def _check(rows: TextRows, path: Path) -> TextRows:
    if not rows.texts:
        raise DataError(f"text file {path} holds no texts")
    where = "row" if path.suffix.lower() in (".parquet", ".pq") else "line"
    for text, line in zip(rows.texts, rows.lines):
        if text is None or not text.strip():
            raise DataError(f"text file {path}, {where} {line}: the text is empty")
    if rows.labels is not None:
        for label, line in zip(rows.labels, rows.lines):
            if label is None or str(label).strip() == "":
                raise DataError(f"text file {path}, {where} {line}: the label is missing")
    return rows


def _targets(
    raw: list[object], lines: list[int], task: str, path: Path, column: str
) -> tuple[np.ndarray, list[str] | None]:
    if task == "regression":
        values = []
        for value, line in zip(raw, lines):
            try:
                number = float(value)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise DataError(
                    f"text file {path}, line {line}: target {str(value)[:32]!r} in column "
                    f"{column!r} is not a number"
                ) from None
            if not np.isfinite(number):
                raise DataError(f"text file {path}, line {line}: target is NaN or Inf")
            values.append(number)
        return np.asarray(values, np.float32), None
    names = [str(v).strip() for v in raw]
    try:  # numeric labels sort numerically ("2" before "10")
        uniq = sorted(set(names), key=float)
    except ValueError:
        uniq = sorted(set(names))
    index = {label: i for i, label in enumerate(uniq)}
    return np.array([index[n] for n in names], np.int64), uniq


def _object_array(texts: list[str]) -> np.ndarray:
    out = np.empty(len(texts), dtype=object)
    out[:] = texts
    return out


def _loaded(
    path: Path,
    data: ArraySet,
    test: ArraySet | None,
    labels: list[str] | None,
    config: DataConfig,
) -> LoadedData:
    parts = [data.x, data.y] + ([test.x, test.y] if test is not None else [])
    return LoadedData(
        data=data,
        test=test,
        kind="text",
        labels=labels,
        scale=1.0,
        fingerprint=fingerprint_arrays(*parts),
        source=str(path),
        config=config,
    )
