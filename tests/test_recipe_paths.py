"""Paths in a recipe resolve relative to the recipe file; `--set` paths to the current folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from scaledl.errors import RecipeError
from scaledl.recipe import load_recipe
from tests.conftest import REPO, SHARED_DATASETS


def write(path: Path, data: dict[str, object]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


def test_recipe_paths_are_relative_to_the_recipe_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "project" / "data").mkdir(parents=True)
    (tmp_path / "project" / "data" / "t.csv").write_text("a,label\n1,0\n")
    recipe = write(
        tmp_path / "project" / "recipes" / "r.yaml",
        {"data": {"source": "../data/t.csv", "cache_dir": "cache"}},
    )
    monkeypatch.chdir(tmp_path)  # anywhere but the recipe's folder
    loaded = load_recipe(recipe)
    assert loaded.data.source == str(tmp_path / "project" / "data" / "t.csv")
    assert loaded.data.cache_dir == str(tmp_path / "project" / "recipes" / "cache")
    # the saved recipe (and so the package lineage) holds the absolute path
    assert yaml.safe_load(loaded.to_yaml())["data"]["source"] == loaded.data.source


def test_set_paths_are_relative_to_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = write(tmp_path / "recipes" / "r.yaml", {"data": {"source": "digits"}})
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    assert load_recipe(recipe, ["data.source=mine.csv"]).data.source == str(
        tmp_path / "work" / "mine.csv"
    )
    assert load_recipe(recipe, ["data={source: a/b.npz}"]).data.source == str(
        tmp_path / "work" / "a" / "b.npz"
    )
    assert load_recipe(recipe, ["data.source=/abs/x.csv"]).data.source == "/abs/x.csv"
    assert load_recipe(recipe).data.source == "digits"  # a built-in name, not a path


def test_a_path_that_only_exists_from_the_current_folder_gets_a_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "t.csv").write_text("a,label\n1,0\n")
    recipe = write(tmp_path / "recipes" / "r.yaml", {"data": {"source": "t.csv"}})
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RecipeError, match=r"relative to the recipe's folder.*'\.\./t\.csv'"):
        load_recipe(recipe)


def test_the_cifar_example_works_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    recipe = load_recipe(REPO / "examples" / "cifar10-cnn.yaml")
    assert Path(recipe.data.source).resolve() == (SHARED_DATASETS / "cifar10").resolve()
