"""User mistakes through the real CLI: one message, exit 2, no traceback, nothing half-written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import quick_recipe, run_cli
from tests.data.test_sources import make_image_folder

pytestmark = pytest.mark.e2e


def write_recipe(path: Path, **overrides: object) -> Path:
    path.write_text(yaml.safe_dump(quick_recipe(**overrides)))
    return path


def assert_usage_error(result, *fragments: str) -> None:  # type: ignore[no-untyped-def]
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    text = result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in text, (fragment, text)


def test_unknown_recipe_key_lists_valid_keys(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path / "r.yaml", train={"epochs": 1, "epochz": 3})
    result = run_cli("train", str(recipe), "--out", str(tmp_path / "out"))
    assert_usage_error(result, "unknown key 'train.epochz'", "epochs", "batch_size")
    assert not (tmp_path / "out" / "package").exists()


def test_bad_override_and_missing_recipe(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path / "r.yaml")
    assert_usage_error(run_cli("train", str(recipe), "--set", "train.epochs"), "KEY.PATH=VALUE")
    assert_usage_error(run_cli("train", str(recipe), "--set", "train.epochs=-1"), "train.epochs")
    assert_usage_error(run_cli("train", str(tmp_path / "nope.yaml")), "does not exist")
    assert_usage_error(run_cli("train", str(recipe), "--frobnicate"), "--frobnicate")


@pytest.mark.parametrize(
    ("source", "fragment"),
    [("/no/such/folder", "does not exist"), ("", "data.source is empty")],
)
def test_missing_or_empty_data(tmp_path: Path, source: str, fragment: str) -> None:
    recipe = write_recipe(tmp_path / "r.yaml", data={"source": source})
    result = run_cli("train", str(recipe), "--out", str(tmp_path / "out"))
    assert_usage_error(result, fragment)
    assert not (tmp_path / "out" / "package").exists()


def test_corrupt_image_is_named(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "imgs")
    (root / "class2" / "004.png").write_bytes(b"\x89PNG broken")
    recipe = write_recipe(tmp_path / "r.yaml", data={"source": str(root)})
    assert_usage_error(
        run_cli("train", str(recipe), "--out", str(tmp_path / "o")), "004.png", "corrupt"
    )


@pytest.mark.parametrize(
    ("csv", "fragments"),
    [
        ("a,b,target\n1,2,0\n3,4,1\n", ("no label column 'label'", "['a', 'b', 'target']")),
        ("a,b,label\n1,2,0\n3,,1\n", ("column 'b', row 3",)),
        ("a,b,label\n1,2,0\n3,hello,1\n", ("column 'b', row 3", "'hello' is not a number")),
    ],
)
def test_bad_tables(tmp_path: Path, csv: str, fragments: tuple[str, ...]) -> None:
    (tmp_path / "t.csv").write_text(csv)
    recipe = write_recipe(
        tmp_path / "r.yaml",
        data={"source": str(tmp_path / "t.csv")},
        model={"family": "mlp", "hidden": [8]},
    )
    assert_usage_error(run_cli("train", str(recipe), "--out", str(tmp_path / "o")), *fragments)


def test_shape_that_does_not_fit_the_model(tmp_path: Path) -> None:
    rows = ["a,b,label"] + [f"{i},{i % 3},{i % 2}" for i in range(40)]
    (tmp_path / "t.csv").write_text("\n".join(rows))
    recipe = write_recipe(
        tmp_path / "r.yaml", data={"source": str(tmp_path / "t.csv")}
    )  # a CNN on a table
    result = run_cli("train", str(recipe), "--out", str(tmp_path / "o"))
    assert_usage_error(result, "model family 'cnn' does not fit the data", "(2,)")


def test_tampered_package_fails_verify_naming_the_file(
    digits_package: Path, tmp_path: Path
) -> None:
    pkg = Path(shutil.copytree(digits_package, tmp_path / "pkg"))
    assert run_cli("verify", str(pkg)).returncode == 0
    onnx = pkg / "model.onnx"
    data = bytearray(onnx.read_bytes())
    data[-10] ^= 0xFF
    onnx.write_bytes(bytes(data))
    assert_usage_error(run_cli("verify", str(pkg)), "model.onnx", "checksum")
    assert_usage_error(run_cli("evaluate", str(pkg)), "model.onnx")
    assert_usage_error(run_cli("verify", str(tmp_path / "missing")), "does not exist")


def test_evaluate_on_another_data_set_with_json(digits_package: Path, tmp_path: Path) -> None:
    import json

    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    np.savez(tmp_path / "new.npz", x=digits.images[:200].astype(np.uint8), y=digits.target[:200])
    out = tmp_path / "eval.json"
    result = run_cli(
        "evaluate", str(digits_package), "--data", str(tmp_path / "new.npz"), "--json", str(out)
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["samples"] == 200 and report["metrics"]["accuracy"] > 0.5
    assert np.asarray(report["confusion_matrix"]).sum() == 200
    assert_usage_error(
        run_cli("evaluate", str(digits_package), "--split", "holdout"), "train, val, test"
    )
