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


@pytest.mark.parametrize(
    "flags", [("--device", "tpu"), ("--set", "train.epochs"), ("--set", "train.epochs=-1")]
)
def test_a_bad_train_flag_is_answered_before_torch_is_imported(
    tmp_path: Path, flags: tuple[str, ...]
) -> None:
    """A mistaken flag or override costs the user a second, not torch's import time."""
    import subprocess
    import sys

    recipe = write_recipe(tmp_path / "r.yaml")
    probe = (
        "import runpy, sys\n"
        f"sys.argv = ['scaledl', 'train', {str(recipe)!r}, *{list(flags)!r}]\n"
        "try:\n"
        "    runpy.run_module('scaledl', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    print('exit', exc.code, 'torch' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip().splitlines()[-1] == "exit 2 False", (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr


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


def test_empty_class_folder_and_stray_label_are_named(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "imgs")
    (root / "class3").mkdir()  # a third… fourth class folder with nothing in it
    recipe = write_recipe(tmp_path / "r.yaml", data={"source": str(root)})
    assert_usage_error(
        run_cli("train", str(recipe), "--out", str(tmp_path / "o")), "'class3' holds no images"
    )
    rows = ["a,b,label"] + [f"{i},{i % 3},{i % 2}" for i in range(40)] + ["7,7,11"]
    (tmp_path / "t.csv").write_text("\n".join(rows))
    recipe = write_recipe(
        tmp_path / "t.yaml",
        data={"source": str(tmp_path / "t.csv")},
        model={"family": "mlp", "hidden": [8]},
        train={"epochs": 1},
    )
    result = run_cli("train", str(recipe), "--out", str(tmp_path / "t"))
    assert_usage_error(result, "class '11' has 1 row", "--set data.allow_small_classes=true")
    allowed = run_cli(
        "train", str(recipe), "--out", str(tmp_path / "t"), "--set", "data.allow_small_classes=true"
    )
    assert allowed.returncode == 0, allowed.stderr
    assert "'11' has 1 row" in allowed.stderr  # still said, as a warning


def test_resume_without_a_checkpoint_names_the_path(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path / "r.yaml")
    expected = str(tmp_path / "out" / "checkpoints" / "last.ckpt")
    for verb, *extra in (("train",), ("run",), ("train", "--nproc", "2")):
        result = run_cli(verb, str(recipe), "--out", str(tmp_path / "out"), "--resume", *extra)
        assert_usage_error(result, "--resume", expected)
    assert not (tmp_path / "out" / "package").exists()


def test_a_restarted_group_without_a_checkpoint_still_starts(tmp_path: Path) -> None:
    """torchrun restarts a group with --resume semantics; with no checkpoint yet it starts."""
    recipe = write_recipe(tmp_path / "r.yaml", train={"epochs": 1, "batch_size": 64})
    restarted = {"TORCHELASTIC_RESTART_COUNT": "1"}
    result = run_cli("train", str(recipe), "--out", str(tmp_path / "o"), env=restarted)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "o" / "package" / "manifest.json").is_file()


def test_custom_class_in_a_recipe_needs_trust_code(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    recipe = write_recipe(
        tmp_path / "r.yaml",
        model={
            "family": "custom",
            "class_path": "subprocess:Popen",
            "kwargs": {"args": ["touch", str(marker)]},
        },
    )
    result = run_cli("train", str(recipe), "--out", str(tmp_path / "o"))
    assert_usage_error(result, "subprocess:Popen", "--trust-code")
    assert not marker.exists()


def test_files_that_are_not_what_they_say(digits_package: Path, tmp_path: Path) -> None:
    import hashlib
    import json

    import numpy as np

    pkg = Path(shutil.copytree(digits_package, tmp_path / "pkg"))
    (pkg / "model.onnx").write_bytes(b"not a graph")  # checksum updated: a consistent liar
    manifest = json.loads((pkg / "manifest.json").read_text())
    manifest["files"]["model.onnx"] = hashlib.sha256(b"not a graph").hexdigest()
    (pkg / "manifest.json").write_text(json.dumps(manifest))
    for verb in ("evaluate", "verify", "bench"):
        assert_usage_error(run_cli(verb, str(pkg)), "model.onnx", "ONNX Runtime")
    np.savez(tmp_path / "ids.npz", x=np.zeros((12, 4)), y=np.array([0, 1] * 5 + [10**12, 1]))
    recipe = write_recipe(
        tmp_path / "r.yaml",
        data={"source": str(tmp_path / "ids.npz")},
        model={"family": "mlp", "hidden": [8]},
    )
    assert_usage_error(run_cli("train", str(recipe)), "class id 1000000000000")
    (tmp_path / "broken.yaml").write_text("train: {epochs: [1,\n")
    result = run_cli("train", str(tmp_path / "broken.yaml"))
    assert_usage_error(result, "not valid YAML", "line")
    assert len(result.stderr.strip().splitlines()) == 1  # one message, one line
    assert_usage_error(
        run_cli("verify", str(digits_package), "--json", str(tmp_path)), str(tmp_path), "folder"
    )
