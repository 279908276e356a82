"""Every data source: digits, image folders (cached), IDX, CSV/TSV/Parquet, NPZ."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from scaledl.data import DataConfig
from scaledl.errors import DataError
from scaledl.modalities import load_data, load_splits


def write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    codes = {np.uint8: 0x08, np.int32: 0x0C, np.float32: 0x0D}
    code = codes[array.dtype.type]
    header = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">i", d) for d in array.shape)
    body = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    if compress:
        path.write_bytes(gzip.compress(body))
    else:
        path.write_bytes(body)


def make_image_folder(root: Path, classes: int = 3, per_class: int = 6, size: int = 12) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(classes):
        folder = root / f"class{c}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            pixels[..., c % 3] = 200 + c
            Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    return root


def test_digits_is_embedded() -> None:
    loaded = load_data(DataConfig(source="digits"))
    assert loaded.data.x.shape == (1797, 1, 8, 8)
    assert loaded.labels == [str(i) for i in range(10)]
    assert loaded.data.x.max() == 16 and loaded.scale == pytest.approx(1 / 16)


def test_splits_are_stratified_deterministic_and_disjoint() -> None:
    cfg = DataConfig(source="digits", val_fraction=0.1, test_fraction=0.2)
    a, b = load_splits(cfg, seed=3), load_splits(cfg, seed=3)
    c = load_splits(cfg, seed=4)
    assert np.array_equal(a.train.x, b.train.x) and np.array_equal(a.test.y, b.test.y)
    assert not np.array_equal(a.test.x, c.test.x)
    assert len(a.train) + len(a.val) + len(a.test) == 1797
    counts = np.bincount(a.test.y, minlength=10) / len(a.test)
    assert counts.min() > 0.08 and counts.max() < 0.12  # every class ~10% of the test split


def test_image_folder_with_split_ratio_and_cache(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "imgs")
    cfg = DataConfig(source=str(root), cache_dir=str(tmp_path / "cache"), test_fraction=0.34)
    first = load_data(cfg)
    assert first.data.x.shape == (18, 3, 12, 12) and first.data.x.dtype == np.uint8
    assert first.labels == ["class0", "class1", "class2"]
    cached = list((tmp_path / "cache").glob("images-*.npz"))
    assert len(cached) == 1
    second = load_data(cfg)
    assert np.array_equal(first.data.x, second.data.x) and first.fingerprint == second.fingerprint
    splits = load_splits(cfg, seed=0)
    assert len(splits.test) == 6  # 2 of 6 per class


def test_image_folder_train_test_layout_and_limit(tmp_path: Path) -> None:
    make_image_folder(tmp_path / "ds" / "train", per_class=5)
    make_image_folder(tmp_path / "ds" / "test", per_class=2)
    cfg = DataConfig(source=str(tmp_path / "ds"), cache_dir=str(tmp_path / "c"), limit_per_class=3)
    loaded = load_data(cfg)
    assert loaded.test is not None and len(loaded.test) == 6 and len(loaded.data) == 9


def test_corrupt_image_is_named(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "imgs")
    bad = root / "class1" / "002.png"
    bad.write_bytes(b"not a png at all")
    with pytest.raises(DataError, match=r"002\.png"):
        load_data(DataConfig(source=str(root), cache_dir=str(tmp_path / "c")))


def test_mixed_sizes_need_image_size(tmp_path: Path) -> None:
    from PIL import Image

    root = make_image_folder(tmp_path / "imgs")
    Image.new("RGB", (20, 16)).save(root / "class0" / "zz.png")
    with pytest.raises(DataError, match="image_size"):
        load_data(DataConfig(source=str(root), cache_dir=str(tmp_path / "c")))
    resized = load_data(
        DataConfig(source=str(root), cache_dir=str(tmp_path / "c"), image_size=(8, 8))
    )
    assert resized.data.x.shape[2:] == (8, 8)


@pytest.mark.parametrize("compress", [True, False])
def test_idx_folder(tmp_path: Path, compress: bool) -> None:
    rng = np.random.default_rng(1)
    suffix = ".gz" if compress else ""
    for prefix, n in (("train", 40), ("t10k", 10)):
        write_idx(
            tmp_path / f"{prefix}-images-idx3-ubyte{suffix}",
            rng.integers(0, 255, (n, 6, 6), dtype=np.uint8),
            compress,
        )
        write_idx(
            tmp_path / f"{prefix}-labels-idx1-ubyte{suffix}",
            (np.arange(n) % 4).astype(np.uint8),
            compress,
        )
    loaded = load_data(DataConfig(source=str(tmp_path)))
    assert (
        loaded.data.x.shape == (40, 1, 6, 6) and loaded.test is not None and len(loaded.test) == 10
    )
    assert loaded.labels == ["0", "1", "2", "3"]


def test_truncated_idx_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, np.zeros((5, 4, 4), np.uint8), compress=False)
    path.write_bytes(path.read_bytes()[:-7])
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"")
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(5, np.uint8), compress=False)
    with pytest.raises(DataError, match="truncated"):
        load_data(DataConfig(source=str(path)))


def test_csv_table(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    rows = ["a,b,label"] + [f"{i},{i * 0.5},{'yes' if i % 2 else 'no'}" for i in range(30)]
    path.write_text("\n".join(rows))
    loaded = load_data(DataConfig(source=str(path)))
    assert loaded.kind == "table" and loaded.data.x.shape == (30, 2)
    assert loaded.labels == ["no", "yes"] and loaded.feature_names == ["a", "b"]


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        ("a,b\n1,2\n", "no label column 'label'"),
        ("a,label\n1,0\nnan,1\n", r"column 'a', row 3"),
        ("a,label\n1,0\nxyz,1\n", r"column 'a', row 3: 'xyz' is not a number"),
        ("a,label\n", "no rows"),
        ("", "empty"),
    ],
)
def test_csv_errors_name_column_and_row(tmp_path: Path, content: str, pattern: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=pattern):
        load_data(DataConfig(source=str(path)))


def test_parquet_table(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.table({"f1": [0.1, 0.2, 0.3, 0.4], "f2": [1, 2, 3, 4], "label": [0, 1, 0, 1]})
    pq.write_table(table, tmp_path / "t.parquet")
    loaded = load_data(DataConfig(source=str(tmp_path / "t.parquet")))
    assert loaded.data.x.shape == (4, 2) and loaded.labels == ["0", "1"]


def test_npz_images_and_tables(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    np.savez(
        tmp_path / "img.npz",
        x=rng.integers(0, 255, (12, 8, 8, 3), dtype=np.uint8),
        y=np.arange(12) % 3,
    )
    img = load_data(DataConfig(source=str(tmp_path / "img.npz")))
    assert img.kind == "image" and img.data.x.shape == (12, 3, 8, 8)
    np.savez(tmp_path / "tab.npz", x=rng.normal(size=(10, 4)), y=np.arange(10) % 2)
    tab = load_data(DataConfig(source=str(tmp_path / "tab.npz")))
    assert tab.kind == "table" and tab.data.x.dtype == np.float32


def test_npz_rejects_nan_and_missing_arrays(tmp_path: Path) -> None:
    np.savez(tmp_path / "nan.npz", x=np.array([[np.nan, 1.0], [0.0, 1.0]]), y=np.array([0, 1]))
    with pytest.raises(DataError, match="NaN"):
        load_data(DataConfig(source=str(tmp_path / "nan.npz")))
    np.savez(tmp_path / "nox.npz", features=np.zeros((2, 2)))
    with pytest.raises(DataError, match="lacks array 'x'"):
        load_data(DataConfig(source=str(tmp_path / "nox.npz")))


def test_missing_and_unknown_sources(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_data(DataConfig(source=str(tmp_path / "nope")))
    (tmp_path / "x.weird").write_text("?")
    with pytest.raises(DataError, match="unknown type"):
        load_data(DataConfig(source=str(tmp_path / "x.weird")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        load_data(DataConfig(source=str(tmp_path / "empty")))


def test_an_empty_class_folder_is_an_error_naming_it(tmp_path: Path) -> None:
    """Dropping it silently would train a 2-class model from 3 class folders."""
    root = make_image_folder(tmp_path / "imgs")
    (root / "zebra").mkdir()
    (root / "zebra" / "notes.txt").write_text("not an image")
    cfg = DataConfig(source=str(root), cache_dir=str(tmp_path / "c"))
    with pytest.raises(DataError, match=r"class folder 'zebra' holds no images"):
        load_data(cfg)
    (root / "zebra" / "notes.txt").unlink()
    (root / "zebra").rmdir()
    (root / ".ipynb_checkpoints").mkdir()  # hidden folders are not classes
    assert load_data(cfg).labels == ["class0", "class1", "class2"]


def test_a_stray_label_is_an_error_naming_the_class_and_the_flag(tmp_path: Path) -> None:
    rows = ["a,b,label"] + [f"{i},{i % 3},{'cat' if i % 2 else 'dog'}" for i in range(40)]
    (tmp_path / "t.csv").write_text("\n".join([*rows, "5,5,cta"]))  # one mistyped label
    cfg = DataConfig(source=str(tmp_path / "t.csv"))
    with pytest.raises(DataError) as refused:
        load_splits(cfg)
    message = refused.value.message
    assert "class 'cta' has 1 row" in message and "data.allow_small_classes" in message
    assert "at least 6 rows" in message
    allowed = load_splits(cfg.model_copy(update={"allow_small_classes": True}))
    assert allowed.labels == ["cat", "cta", "dog"]  # the user chose to keep it


def test_small_classes_need_rows_for_every_split() -> None:
    from scaledl.data.dataset import min_rows_per_class, stratified_split

    for fractions in [(0.2, 0.1), (0.1,), (0.3, 0.05), (0.25,)]:
        need = min_rows_per_class(fractions)
        y = np.zeros(need, dtype=np.int64)
        assert all(len(p) >= 1 for p in stratified_split(y, fractions, seed=0))
        y = np.zeros(need - 1, dtype=np.int64)
        assert any(len(p) == 0 for p in stratified_split(y, fractions, seed=0))


def test_an_absurd_class_id_is_refused_not_allocated(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((12, 4)), y=np.array([0, 1] * 5 + [10**12, 1]))
    with pytest.raises(DataError, match=r"class id 1000000000000.*task: regression"):
        load_data(DataConfig(source=str(tmp_path / "d.npz")))
    np.savez(tmp_path / "e.npz", x=np.zeros((0, 4)), y=np.zeros(0, dtype=np.int64))
    with pytest.raises(DataError, match="holds no samples"):
        load_data(DataConfig(source=str(tmp_path / "e.npz")))
