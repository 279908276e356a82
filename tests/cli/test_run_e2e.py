"""The main job end to end through the real CLI, and the example recipes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scaledl.recipe import load_recipe
from tests.conftest import REPO, run_cli

pytestmark = pytest.mark.e2e


@pytest.mark.slow
def test_scaledl_run_on_digits(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = run_cli("run", "--out", str(out))
    assert result.returncode == 0, result.stderr
    package = out / "package"
    manifest = json.loads((package / "manifest.json").read_text())
    assert manifest["metrics"]["accuracy"] >= 0.97
    assert str(package) in result.stdout and "accuracy" in result.stdout
    report = (package / "report.html").read_text()
    assert report.count("data:image/png;base64,") >= 2  # training curves + confusion matrix
    assert "Resolved recipe" in report and "channels" in report
    assert "report.html" in manifest["files"]
    assert run_cli("verify", str(package)).returncode == 0
    # The resolved recipe is saved beside the output and inside the package.
    assert (out / "recipe.yaml").is_file() and "recipe.yaml" in manifest["files"]


def test_set_overrides_are_saved_in_the_package(tmp_path: Path) -> None:
    result = run_cli(
        "train",
        str(REPO / "examples" / "digits-mlp.yaml"),
        "--out",
        str(tmp_path),
        "--set",
        "train.epochs=1",
        "--set",
        "model.hidden=[32]",
    )
    assert result.returncode == 0, result.stderr
    saved = (tmp_path / "package" / "recipe.yaml").read_text()
    assert "epochs: 1" in saved and "- 32" in saved


@pytest.mark.parametrize("path", sorted((REPO / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_example_recipes_validate(path: Path) -> None:
    recipe = load_recipe(path)
    assert recipe.name and recipe.model.family in {"mlp", "cnn", "rnn", "transformer"}


def test_builtin_recipe_matches_the_example() -> None:
    builtin = load_recipe(None)
    assert builtin.to_dict() == load_recipe(REPO / "examples" / "digits-cnn.yaml").to_dict()
