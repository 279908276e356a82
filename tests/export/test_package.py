"""Package contract: manifest, checksums, signatures, zips, parity sample, atomic writes."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from scaledl.errors import PackageError
from scaledl.package import open_package, update_package, write_package
from scaledl.verify import verify_package


@pytest.fixture
def pkg(digits_package: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(digits_package, tmp_path / "pkg"))


def test_manifest_holds_the_contract(pkg: Path) -> None:
    m = json.loads((pkg / "manifest.json").read_text())
    for key in (
        "name",
        "version",
        "created_at",
        "task",
        "family",
        "knobs",
        "signature",
        "labels",
        "preprocessing",
        "metrics",
        "lineage",
        "files",
    ):
        assert key in m, key
    assert m["signature"]["inputs"] == [
        {"name": "input", "datatype": "FP32", "shape": [-1, 1, 8, 8]}
    ]
    assert m["signature"]["outputs"][0]["shape"] == [-1, 10]
    assert m["labels"] == [str(i) for i in range(10)]
    assert 0.0 <= m["metrics"]["accuracy"] <= 1.0 and m["metrics"]["parity_max_abs_error"] <= 1e-4
    assert len(m["lineage"]["data_fingerprint"]) == 16 and m["lineage"]["recipe_hash"]
    assert set(m["files"]) >= {
        "model.onnx",
        "weights.safetensors",
        "model.json",
        "sample.npz",
        "recipe.yaml",
    }
    # One file: no external-data side file next to the graph.
    assert not any(name.endswith(".data") for name in m["files"])
    pre = m["preprocessing"]  # the JSON form, as written
    assert (
        pre["kind"] == "image" and pre["scale"] == pytest.approx(1 / 16) and len(pre["mean"]) == 1
    )


def test_preprocessing_statistics_come_from_the_training_split(pkg: Path) -> None:
    from scaledl.data import DataConfig
    from scaledl.modalities import load_splits

    m = json.loads((pkg / "manifest.json").read_text())
    splits = load_splits(DataConfig(source="digits"), seed=m["lineage"]["split_seed"])
    expected = (splits.train.x.astype(np.float64) / 16).mean()
    everything = (np.concatenate([splits.train.x, splits.val.x, splits.test.x]) / 16).mean()
    assert m["preprocessing"]["mean"][0] == pytest.approx(expected)
    assert m["preprocessing"]["mean"][0] != pytest.approx(everything, abs=1e-6)


def test_verify_passes_on_an_intact_package(pkg: Path) -> None:
    report = verify_package(pkg)
    assert report.parity_max_abs_error is not None and report.parity_max_abs_error <= 1e-4


@pytest.mark.parametrize(
    "name", ["model.onnx", "weights.safetensors", "model.json", "sample.npz", "recipe.yaml"]
)
def test_a_changed_byte_in_any_file_fails_naming_it(pkg: Path, name: str) -> None:
    target = pkg / name
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(PackageError, match=name.replace(".", r"\.")):
        verify_package(pkg)


def test_missing_and_unlisted_files(pkg: Path) -> None:
    (pkg / "extra.bin").write_bytes(b"x")
    with pytest.raises(PackageError, match="unlisted"):
        open_package(pkg)
    (pkg / "extra.bin").unlink()
    (pkg / "sample.npz").unlink()
    with pytest.raises(PackageError, match=r"sample\.npz is listed but missing"):
        open_package(pkg)


def test_signature(pkg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = b"k" * 32
    with pytest.raises(PackageError, match="unsigned"):
        open_package(pkg, key=key)
    update_package(pkg, key=key)
    assert verify_package(pkg, key=key).signed
    with pytest.raises(PackageError, match="signature does not match"):
        open_package(pkg, key=b"another key")
    manifest = json.loads((pkg / "manifest.json").read_text())
    manifest["metrics"]["accuracy"] = 1.0  # tamper with the manifest only
    (pkg / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PackageError, match="signature"):
        open_package(pkg, key=key)


def test_zip_is_accepted_wherever_a_path_is(pkg: Path, tmp_path: Path) -> None:
    archive = tmp_path / "pkg.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in pkg.rglob("*"):
            zf.write(f, f"digits/{f.relative_to(pkg)}")
    assert verify_package(archive).files_checked >= 5
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../escape.txt", "x")
    with pytest.raises(PackageError, match="relative path"):
        open_package(evil)


def test_parity_failure_is_reported(pkg: Path) -> None:
    import io

    with np.load(pkg / "sample.npz") as s:
        raw, x, y = s["raw"], s["input"], s["output"]
    buffer = io.BytesIO()
    np.savez(buffer, raw=raw, input=x, output=y + 0.5)
    update_package(pkg, add_files={"sample.npz": buffer.getvalue()})
    with pytest.raises(PackageError, match="differ from the recorded sample"):
        verify_package(pkg)


def _minimal(version: str) -> dict[str, object]:
    tensor = {"name": "x", "datatype": "FP32", "shape": [-1, 2]}
    return {
        "name": "a",
        "version": version,
        "task": "classification",
        "family": "mlp",
        "signature": {"inputs": [tensor], "outputs": [{**tensor, "name": "y"}]},
    }


def test_write_is_atomic_when_a_write_fails(tmp_path: Path) -> None:
    dest = tmp_path / "p"
    write_package(dest, _minimal("1"), {"model.onnx": b"old"})

    with pytest.raises(FileNotFoundError):
        write_package(
            dest,
            _minimal("2"),
            {"model.onnx": b"new", "b.txt": tmp_path / "does-not-exist"},
        )
    assert (dest / "model.onnx").read_bytes() == b"old"  # the old package is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["p"]  # no temp folder left behind
