"""Packages that lie: each crafted package is refused with one message naming the file or field.

A package is data from anyone. Its checksums only prove that the files are the ones listed, so
every file it uses must also be a regular file inside it, every name it gives must be one of its
listed files, its manifest fields must have sane types and sizes, and nothing it names is ever
imported unless the user passes --trust-code.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from scaledl.errors import PackageError, ScaledlError
from scaledl.package import open_package
from scaledl.verify import verify_package
from tests.conftest import quick_recipe, run_cli

Edit = Callable[[Path, dict[str, Any]], None]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def craft(source: Path, dest: Path, edit: Edit) -> Path:
    """A copy of a real package whose manifest (and files) `edit` changes; checksums rewritten
    for every listed file that is still a regular file, as a liar would."""
    pkg = Path(shutil.copytree(source, dest))
    manifest = json.loads((pkg / "manifest.json").read_text())
    edit(pkg, manifest)
    for rel in list(manifest.get("files", {})) if isinstance(manifest.get("files"), dict) else []:
        target = pkg / rel if isinstance(rel, str) and not rel.startswith("/") else Path(rel)
        if target.is_file():
            manifest["files"][rel] = sha(target)
    (pkg / "manifest.json").write_text(json.dumps(manifest))
    return pkg


def outside_copy(pkg: Path, name: str) -> Path:
    """A copy of one of the package's files outside it (what an escaping name points at)."""
    target = pkg.parent / f"outside-{name}"
    shutil.copyfile(pkg / name, target)
    return target


def model_file_up(pkg: Path, m: dict[str, Any]) -> None:
    outside_copy(pkg, "model.onnx")
    m["model_file"] = "../outside-model.onnx"


def model_file_absolute(pkg: Path, m: dict[str, Any]) -> None:
    m["model_file"] = str(outside_copy(pkg, "model.onnx"))


def listed_up(pkg: Path, m: dict[str, Any]) -> None:
    model_file_up(pkg, m)
    m["files"]["../outside-model.onnx"] = ""  # listed too, with its checksum


def listed_absolute(pkg: Path, m: dict[str, Any]) -> None:
    model_file_absolute(pkg, m)
    m["files"][m["model_file"]] = ""


def model_file_unlisted(pkg: Path, m: dict[str, Any]) -> None:
    m["model_file"] = "weights.bin"  # not among the listed files


def onnx_symlink(pkg: Path, m: dict[str, Any]) -> None:
    target = outside_copy(pkg, "model.onnx")
    (pkg / "model.onnx").unlink()
    (pkg / "model.onnx").symlink_to(target)
    m["files"]["model.onnx"] = sha(target)  # the link "passes" its checksum


def folder_symlink(pkg: Path, m: dict[str, Any]) -> None:
    outside = pkg.parent / "outside-dir"
    outside.mkdir()
    shutil.copyfile(pkg / "model.onnx", outside / "model.onnx")
    (pkg / "sub").symlink_to(outside, target_is_directory=True)
    m["model_file"] = "sub/model.onnx"
    m["files"]["sub/model.onnx"] = sha(outside / "model.onnx")


def profile_escapes(pkg: Path, m: dict[str, Any]) -> None:
    outside_copy(pkg, "profile.npz")
    m["monitoring"]["profile"] = "../outside-profile.npz"


def fifo_inside(pkg: Path, m: dict[str, Any]) -> None:
    os.mkfifo(pkg / "model.onnx.fifo")
    m["files"]["model.onnx.fifo"] = "0" * 64


def manifest_lists_itself(pkg: Path, m: dict[str, Any]) -> None:
    m["files"]["manifest.json"] = "0" * 64


def set_field(path: str, value: Any) -> Edit:
    def edit(pkg: Path, m: dict[str, Any]) -> None:
        node = m
        *parents, last = path.split(".")
        for part in parents:
            node = node[part]
        node[last] = value

    return edit


# (id, edit, fragments the one message must contain)
CRAFTED: list[tuple[str, Edit, tuple[str, ...]]] = [
    ("model-file-dotdot", model_file_up, ("model_file", "../outside-model.onnx", "relative path")),
    ("model-file-absolute", model_file_absolute, ("model_file", "outside-model.onnx")),
    ("listed-dotdot", listed_up, ("../outside-model.onnx", "relative path")),
    ("listed-absolute", listed_absolute, ("outside-model.onnx", "relative path")),
    ("model-file-unlisted", model_file_unlisted, ("model_file", "weights.bin", "not one of")),
    ("onnx-symlink", onnx_symlink, ("model.onnx", "symbolic link")),
    ("folder-symlink", folder_symlink, ("sub", "symbolic link")),
    ("profile-escapes", profile_escapes, ("monitoring.profile", "../outside-profile.npz")),
    ("fifo", fifo_inside, ("model.onnx.fifo", "not a regular file")),
    ("lists-manifest", manifest_lists_itself, ("manifest.json",)),
    ("name-int", set_field("name", 5), ("'name'", "int")),
    ("name-path", set_field("name", "../../etc"), ("'name'",)),
    ("version-huge", set_field("version", "9" * 5000), ("'version'",)),
    ("version-list", set_field("version", [1]), ("'version'",)),
    ("task-bogus", set_field("task", "telepathy"), ("'task'", "classification, regression")),
    ("signature-str", set_field("signature", "x"), ("'signature'",)),
    (
        "signature-shape",
        set_field("signature.inputs", [{"name": "input", "datatype": "FP32", "shape": "big"}]),
        ("signature.inputs[0].shape",),
    ),
    (
        "signature-dim-huge",
        set_field(
            "signature.inputs", [{"name": "input", "datatype": "FP32", "shape": [-1, 10**30]}]
        ),
        ("signature.inputs[0].shape[1]",),
    ),
    ("files-list", set_field("files", ["model.onnx"]), ("'files'", "sha256")),
    ("labels-dict", set_field("labels", {"a": 1}), ("'labels'",)),
    ("labels-short", set_field("labels", ["0", "1"]), ("'labels'", "2 classes", "10")),
    (
        "preprocessing-mean",
        set_field("preprocessing.mean", [0.1, 0.2, 0.3]),
        ("preprocessing", "mean holds 3 values", "1 channel"),
    ),
    ("preprocessing-std-zero", set_field("preprocessing.std", [0.0]), ("preprocessing", "std")),
    (
        "preprocessing-shape",
        set_field("preprocessing.raw_shape", [10**6, 10**6, 10**6]),
        ("preprocessing", "raw_shape", "too many"),
    ),
    ("lineage-source-int", set_field("lineage.data", {"source": 7}), ("lineage.data", "source")),
    ("parity-tolerance-str", set_field("parity.tolerance", "1e-4"), ("parity.tolerance",)),
    ("opset-float", set_field("export.opset", 18.5), ("export.opset",)),
]
CRAFTED_JSON = [
    ("not-json", b"{nope", ("manifest.json", "not valid JSON")),
    ("json-array", b"[1, 2]", ("manifest.json", "JSON object")),
    ("deep-nesting", b"[" * 100_000 + b"]" * 100_000, ("manifest.json", "not valid JSON")),
    ("huge-int", b'{"name": ' + b"9" * 5000 + b"}", ("manifest.json", "not valid JSON")),
    ("not-utf8", b'{"name": "\xff"}', ("manifest.json", "not valid JSON")),
]


@pytest.mark.parametrize(("case", "edit", "fragments"), CRAFTED, ids=[c[0] for c in CRAFTED])
def test_crafted_package_is_refused_naming_it(
    digits_package: Path, tmp_path: Path, case: str, edit: Edit, fragments: tuple[str, ...]
) -> None:
    pkg = craft(digits_package, tmp_path / "pkg", edit)
    with pytest.raises(PackageError) as refused:
        verify_package(pkg)
    message = refused.value.message
    for fragment in fragments:
        assert fragment in message, (case, message)


@pytest.mark.parametrize(
    ("case", "body", "fragments"), CRAFTED_JSON, ids=[c[0] for c in CRAFTED_JSON]
)
def test_malformed_manifest_is_one_message(
    digits_package: Path, tmp_path: Path, case: str, body: bytes, fragments: tuple[str, ...]
) -> None:
    pkg = Path(shutil.copytree(digits_package, tmp_path / "pkg"))
    (pkg / "manifest.json").write_bytes(body)
    with pytest.raises(PackageError) as refused:
        open_package(pkg)
    for fragment in fragments:
        assert fragment in refused.value.message, (case, refused.value.message)


def test_an_honest_package_still_verifies(digits_package: Path, tmp_path: Path) -> None:
    pkg = craft(digits_package, tmp_path / "pkg", lambda p, m: None)
    report = verify_package(pkg)
    assert any("weights.safetensors holds the" in line for line in report.checks)


# ---- model.json naming code ------------------------------------------------------------------


def custom_model_json(marker: Path) -> Edit:
    """model.json naming `subprocess:Popen` with arguments that would create `marker`."""

    def edit(pkg: Path, m: dict[str, Any]) -> None:
        spec = json.loads((pkg / "model.json").read_text())
        spec["family"] = "custom"
        spec["knobs"] = {
            "class_path": "subprocess:Popen",
            "kwargs": {"args": ["touch", str(marker)]},
        }
        (pkg / "model.json").write_text(json.dumps(spec))

    return edit


@pytest.mark.e2e
def test_export_never_runs_code_a_package_names(digits_package: Path, tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    pkg = craft(digits_package, tmp_path / "pkg", custom_model_json(marker))
    result = run_cli("export", str(pkg))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "subprocess:Popen" in result.stderr and "--trust-code" in result.stderr
    assert "model.json" in result.stderr
    assert not marker.exists()
    # verify reports the custom class without importing it (it checks the ONNX graph)
    verified = run_cli("verify", str(pkg))
    assert verified.returncode == 0, verified.stderr
    assert "custom class" in verified.stdout and not marker.exists()


def test_rebuilding_paths_refuse_untrusted_code(digits_package: Path, tmp_path: Path) -> None:
    from scaledl.bench.api import bench_packages
    from scaledl.export.rebuild import load_module
    from scaledl.models.registry import UntrustedCodeError
    from scaledl.optimize.api import optimize_package
    from scaledl.optimize.config import OptimizeConfig

    marker = tmp_path / "code-ran"
    pkg = craft(digits_package, tmp_path / "pkg", custom_model_json(marker))
    with pytest.raises(UntrustedCodeError, match="--trust-code"):
        load_module(open_package(pkg))
    with pytest.raises(UntrustedCodeError, match="--trust-code"):
        optimize_package(pkg, OptimizeConfig(methods=["int8-dynamic"], time_budget_min=0.2))
    (result,) = bench_packages([pkg], [1], rounds=1, seconds_per_round=0.01)
    assert [r.runtime for r in result.runtimes] == ["onnxruntime"]  # no eager row
    assert not marker.exists()


def test_trust_code_opts_in_for_one_run(tmp_path: Path) -> None:
    """A recipe naming its own class trains and re-exports with trust_code, and only then."""
    from scaledl.export.reexport import reexport_package
    from scaledl.models.registry import UntrustedCodeError
    from scaledl.pipeline.train import ScaleOptions, train_recipe
    from scaledl.recipe import validate_recipe

    recipe = validate_recipe(
        quick_recipe(
            model={
                "family": "custom",
                "class_path": "tests.export.custom_net:TinyNet",
                "kwargs": {"classes": 10},
            },
            train={"epochs": 1, "batch_size": 64},
        )
    )
    with pytest.raises(UntrustedCodeError, match=r"tests\.export\.custom_net:TinyNet"):
        train_recipe(recipe, tmp_path / "refused")
    trained = train_recipe(recipe, tmp_path / "run", options=ScaleOptions(trust_code=True))
    with pytest.raises(UntrustedCodeError, match="--trust-code"):
        reexport_package(trained.package)
    assert reexport_package(trained.package, trust_code=True)["max_abs_error"] <= 1e-4
    assert any("custom class" in line for line in verify_package(trained.package).checks)


@pytest.mark.parametrize(
    ("case", "spec", "fragment"),
    [
        ("not-object", [1, 2], "JSON object"),
        ("shape-str", {"family": "cnn", "input_shape": "8x8", "num_outputs": 10}, "input_shape"),
        (
            "outputs-neg",
            {"family": "cnn", "input_shape": [1, 8, 8], "num_outputs": -1},
            "num_outputs",
        ),
        (
            "family-unknown",
            {"family": "warp", "input_shape": [1, 8, 8], "num_outputs": 10},
            "unknown model family",
        ),
        (
            "giant-model",
            {
                "family": "mlp",
                "input_shape": [1, 8, 8],
                "num_outputs": 10,
                "knobs": {"hidden": [10**6, 10**6]},
            },
            "does not match",
        ),
        (
            "knobs-huge",
            {
                "family": "mlp",
                "input_shape": [1, 8, 8],
                "num_outputs": 10,
                "knobs": {"hidden": [8] * 100_000},
            },
            "knobs",
        ),
    ],
)
def test_lying_model_json_is_refused_before_building(
    digits_package: Path, tmp_path: Path, case: str, spec: Any, fragment: str
) -> None:
    from scaledl.export.rebuild import load_module

    def edit(pkg: Path, m: dict[str, Any]) -> None:
        (pkg / "model.json").write_text(json.dumps(spec))

    pkg = craft(digits_package, tmp_path / "pkg", edit)
    with pytest.raises(ScaledlError) as refused:
        load_module(open_package(pkg))
    assert fragment in refused.value.message, (case, refused.value.message)


def test_corrupt_weights_and_sample_are_named(digits_package: Path, tmp_path: Path) -> None:
    from scaledl.export.rebuild import load_module

    def weights(pkg: Path, m: dict[str, Any]) -> None:
        (pkg / "weights.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")

    def sample(pkg: Path, m: dict[str, Any]) -> None:
        (pkg / "sample.npz").write_bytes(b"PK\x03\x04 not a zip")

    bad_weights = craft(digits_package, tmp_path / "w", weights)
    with pytest.raises(PackageError, match=r"weights\.safetensors"):
        load_module(open_package(bad_weights))
    with pytest.raises(PackageError, match=r"weights\.safetensors"):
        verify_package(bad_weights)
    with pytest.raises(PackageError, match=r"sample\.npz"):
        verify_package(craft(digits_package, tmp_path / "s", sample))


@pytest.mark.parametrize(
    ("case", "edit"), [("onnx-symlink", onnx_symlink), ("model-file-dotdot", model_file_up)]
)
def test_the_server_refuses_to_load_a_lying_package(
    digits_package: Path, tmp_path: Path, case: str, edit: Edit
) -> None:
    from scaledl.serve.model import load_version
    from scaledl.serve.settings import ServeSettings

    pkg = craft(digits_package, tmp_path / "pkg", edit)
    with pytest.raises(PackageError):
        load_version("digits", "1", pkg, ServeSettings(source=pkg, no_auth=True))
