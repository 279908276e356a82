"""Reading text files: formats, quoting, a separate test file, bad rows named by line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scaledl.config.data import DataConfig
from scaledl.errors import DataError
from scaledl.modalities import load_data, load_splits
from tests.text.conftest import SST2, require_sst2


def load(path: Path, **text: object) -> object:
    return load_data(DataConfig(source=str(path), text=text or {}))


def test_sst2_dev_reads_as_written(tmp_path: Path) -> None:
    require_sst2()
    loaded = load(SST2 / "dev.tsv")
    texts = list(loaded.data.x)  # type: ignore[attr-defined]
    assert len(texts) == 872 and loaded.kind == "text"  # type: ignore[attr-defined]
    raw = (SST2 / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:]
    assert texts == [line.split("\t", 1)[1] for line in raw]
    assert loaded.labels == ["0", "1"]  # type: ignore[attr-defined]


def test_tsv_reads_double_quotes_as_plain_characters(tmp_path: Path) -> None:
    """GLUE-style TSVs are unquoted: a `"` inside a sentence (or opening it) is text."""
    path = tmp_path / "glue.tsv"
    path.write_text('label\tsentence\n1\t"the best " film\n0\tsays " hello\n', encoding="utf-8")
    assert list(load(path).data.x) == ['"the best " film', 'says " hello']  # type: ignore[attr-defined]
    garbled = list(load(path, quoting="csv").data.x)  # type: ignore[attr-defined]
    assert garbled[0] != '"the best " film'  # what csv quoting would have made of it


def test_csv_quoting_commas_quotes_and_newlines(tmp_path: Path) -> None:
    path = tmp_path / "reviews.csv"
    path.write_text(
        'id,review,label\n1,"great, really ""great"" film",pos\n'
        '2,"two\nlines",neg\n3,plain text,neg\n',
        encoding="utf-8",
    )
    loaded = load(path, text_column="review")
    assert list(loaded.data.x) == ['great, really "great" film', "two\nlines", "plain text"]  # type: ignore[attr-defined]
    assert loaded.labels == ["neg", "pos"]  # type: ignore[attr-defined]
    assert loaded.data.y.tolist() == [1, 0, 0]  # type: ignore[attr-defined]


def test_quoting_none_and_a_custom_delimiter(tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    path.write_text('label;text\n1;say "hi\n0;a;b\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"notes.csv, line 3: 3 field\(s\), the header has 2"):
        load(path, delimiter=";", quoting="none")
    path.write_text('label;text\n1;say "hi\n0;ok\n', encoding="utf-8")
    assert list(load(path, delimiter=";", quoting="none").data.x) == ['say "hi', "ok"]  # type: ignore[attr-defined]


def test_jsonl_parquet_and_unlabelled_txt(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"text": "good", "label": 1}, {"text": "bad", "label": 0}]
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    assert list(load(jsonl).data.x) == ["good", "bad"]  # type: ignore[attr-defined]
    parquet = tmp_path / "a.parquet"
    pq.write_table(pa.table({"text": ["good", "bad"], "label": [1, 0]}), parquet)
    assert list(load(parquet).data.y) == [1, 0]  # type: ignore[attr-defined]
    txt = tmp_path / "new.txt"
    txt.write_text("first text\nsecond text\n", encoding="utf-8")
    loaded = load_data(DataConfig(source=str(txt)))
    assert loaded.labels is None and list(loaded.data.x) == ["first text", "second text"]
    with pytest.raises(DataError, match="no labels"):
        load_splits(DataConfig(source=str(txt)))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("label\ttext\n1\tfine\n0\t   \n", r"bad.tsv, line 3: the text is empty"),
        ("label\ttext\n1\tfine\n\tno label\n", r"bad.tsv, line 3: the label is missing"),
        ("label\ttext\n1\tfine\n1\tx\ty\n", r"bad.tsv, line 3: 3 field"),
        ("text\n1\n", r"no label column 'label'"),
    ],
)
def test_bad_rows_are_named_by_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        load(path)


def test_undecodable_bytes_and_bad_json_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bytes.tsv"
    path.write_bytes(b"label\ttext\n1\tfine\n0\tbad \xff byte\n")
    with pytest.raises(DataError, match=r"bytes.tsv, line 3: bytes that are not valid utf-8"):
        load(path)
    jsonl = tmp_path / "b.jsonl"
    jsonl.write_text('{"text": "a", "label": 1}\n{"text": \n', encoding="utf-8")
    with pytest.raises(DataError, match=r"b.jsonl, line 2: not valid JSON"):
        load(jsonl)


def test_test_source_beside_the_training_file(sst2_small: Path) -> None:
    config = DataConfig(source=str(sst2_small), text={"test_source": "dev.tsv"})
    splits = load_splits(config, seed=0)
    assert len(splits.test) == 120 and len(splits.train) + len(splits.val) == 600
    assert splits.kind == "text" and splits.train.x.dtype == object
    again = load_splits(config, seed=0)
    assert splits.fingerprint == again.fingerprint
    assert np.array_equal(splits.val.x, again.val.x)
    with pytest.raises(DataError, match=r"test_source 'nope\.tsv' does not exist"):
        load_data(DataConfig(source=str(sst2_small), text={"test_source": "nope.tsv"}))


def test_new_data_does_not_inherit_the_original_test_file(sst2_small: Path) -> None:
    own = DataConfig(source=str(sst2_small), text={"test_source": "dev.tsv"})
    new = own.with_source(str(sst2_small.parent / "dev.tsv"))
    assert new.text is not None and new.text.test_source is None
    assert new.text.vocab_size == own.text.vocab_size  # type: ignore[union-attr]
    loaded = load_data(new)
    assert loaded.test is None and len(loaded.data) == 120
