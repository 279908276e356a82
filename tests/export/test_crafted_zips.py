"""Zips that lie: entries that are not listed, too big, bigger than declared, links, duplicates.

A zipped package is checked as a whole before a byte is extracted, and the bytes really written
are counted again while extracting.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from scaledl.errors import PackageError
from scaledl.package import open_package
from tests.conftest import run_cli
from tests.export.test_crafted_packages import craft, model_file_up, onnx_symlink

BIG = 512 << 20  # the size of the attack: 512 MB of zeros deflate to about half a megabyte


def zip_package(pkg: Path, archive: Path, extra: Callable[[Any], None] | None = None) -> Path:
    import zipfile

    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(pkg.iterdir()):
            zf.write(f, f"pkg/{f.name}")
        if extra is not None:
            extra(zf)
    return archive


def zeros_entry(name: str, size: int) -> Callable[[Any], None]:
    def add(zf: Any) -> None:
        with zf.open(name, "w", force_zip64=True) as fh:
            block = bytes(1 << 20)
            for _ in range(size >> 20):
                fh.write(block)

    return add


def test_zip_bomb_entry_that_is_not_listed_is_refused_before_extraction(
    digits_package: Path, tmp_path: Path
) -> None:
    from scaledl.package_zip import extract_package_zip

    archive = zip_package(digits_package, tmp_path / "bomb.zip", zeros_entry("pkg/pad.bin", BIG))
    assert archive.stat().st_size < 4 << 20  # a small file that unpacks to 512 MB
    into = tmp_path / "into"
    into.mkdir()
    with pytest.raises(PackageError, match=r"pkg/pad\.bin.*not listed"):
        extract_package_zip(archive, into)
    assert list(into.iterdir()) == []  # nothing was written


def test_zip_over_the_size_cap_is_refused_before_extraction(
    digits_package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listed file over the cap (SCALEDL_MAX_PACKAGE_MB) is refused by its declared size."""
    from scaledl.package_zip import extract_package_zip

    def big_sample(pkg: Path, m: dict[str, Any]) -> None:
        with open(pkg / "history.json", "wb") as fh:
            fh.truncate(32 << 20)

    pkg = craft(digits_package, tmp_path / "pkg", big_sample)
    archive = zip_package(pkg, tmp_path / "big.zip")
    monkeypatch.setenv("SCALEDL_MAX_PACKAGE_MB", "16")
    into = tmp_path / "into"
    into.mkdir()
    with pytest.raises(PackageError, match=r"over the 16 MB limit.*SCALEDL_MAX_PACKAGE_MB"):
        extract_package_zip(archive, into)
    assert list(into.iterdir()) == []
    with pytest.raises(PackageError, match="16 MB limit"):
        open_package(archive)
    monkeypatch.setenv("SCALEDL_MAX_PACKAGE_MB", "64")
    assert open_package(archive).name == "digits-quick"  # the cap is configurable
    monkeypatch.setenv("SCALEDL_MAX_PACKAGE_MB", "lots")
    with pytest.raises(PackageError, match="SCALEDL_MAX_PACKAGE_MB"):
        open_package(archive)


def test_zip_entry_larger_than_it_declares_is_stopped(digits_package: Path, tmp_path: Path) -> None:
    """Declared sizes can lie: extraction stops at the declared size, never writes more."""
    import struct
    import zipfile

    from scaledl.package_zip import extract_package_zip

    archive = zip_package(digits_package, tmp_path / "liar.zip")
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo("pkg/model.onnx")
        declared = 1000
        assert info.file_size > declared
    data = bytearray(archive.read_bytes())
    # uncompressed size: local header offset 22, central directory record offset 24
    struct.pack_into("<I", data, info.header_offset + 22, declared)
    name = info.filename.encode()
    central = next(
        i
        for i in range(len(data) - 4)
        if data[i : i + 4] == b"PK\x01\x02" and data[i + 46 : i + 46 + len(name)] == name
    )
    struct.pack_into("<I", data, central + 24, declared)
    archive.write_bytes(bytes(data))
    into = tmp_path / "into"
    into.mkdir()
    with pytest.raises(PackageError, match=r"liar\.zip"):
        extract_package_zip(archive, into)
    written = into / "model.onnx"
    assert not written.exists() or written.stat().st_size <= declared


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("symlink", "symbolic link"),
        ("duplicate", "appears twice"),
        ("many", "entries"),
        ("absolute", "relative path"),
        ("dotdot", "relative path"),
        ("backslash", "relative path"),
        ("two-manifests", "no manifest.json at its top level"),
    ],
)
def test_zip_with_forbidden_entries_is_refused(
    digits_package: Path, tmp_path: Path, case: str, fragment: str
) -> None:
    import stat
    import warnings
    import zipfile

    def extra(zf: Any) -> None:
        if case == "symlink":
            link = zipfile.ZipInfo("pkg/model.onnx.link")
            link.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(link, "/etc/passwd")
        elif case == "duplicate":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # zipfile warns about the duplicate it writes
                zf.writestr("pkg/model.onnx", b"another graph")
        elif case == "many":
            for i in range(5000):
                zf.writestr(f"pkg/f{i}", b"")
        elif case == "absolute":
            zf.writestr("/tmp/evil", b"x")
        elif case == "dotdot":
            zf.writestr("pkg/../../evil", b"x")
        elif case == "backslash":
            zf.writestr("pkg\\..\\evil", b"x")
        elif case == "two-manifests":
            zf.writestr("other/manifest.json", b"{}")

    archive = zip_package(digits_package, tmp_path / f"{case}.zip", extra)
    with pytest.raises(PackageError) as refused:
        open_package(archive)
    assert fragment in refused.value.message and f"{case}.zip" in refused.value.message


@pytest.mark.e2e
def test_cli_refuses_crafted_packages_with_one_message(
    digits_package: Path, tmp_path: Path
) -> None:
    """Through the real CLI: exit 2, the file named, no traceback (a sample of the cases)."""
    cases = {
        "onnx-symlink": craft(digits_package, tmp_path / "a", onnx_symlink),
        "model-file-dotdot": craft(digits_package, tmp_path / "b", model_file_up),
        "bomb": zip_package(digits_package, tmp_path / "bomb.zip", zeros_entry("pkg/x", 64 << 20)),
    }
    expected = {
        "onnx-symlink": "symbolic link",
        "model-file-dotdot": "../outside-model.onnx",
        "bomb": "not listed",
    }
    for case, path in cases.items():
        for verb in ("verify", "evaluate"):
            result = run_cli(verb, str(path))
            assert result.returncode == 2, (case, verb, result.stderr)
            assert "Traceback" not in result.stderr
            assert expected[case] in result.stderr, (case, verb, result.stderr)
