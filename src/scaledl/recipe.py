"""Typed recipes: one config per stage, read from YAML, overridable with `--set a.b=value`.

The resolved recipe (defaults filled in) is saved beside every output, so a run can be repeated.
Paths in a recipe file are relative to that file (as users expect, wherever they run scaledl
from); a path given with `--set` is relative to the current folder, where it was typed. Both are
saved as absolute paths, so the recipe copy and a package's lineage still find the data.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

import scaledl.data.augment  # noqa: F401  (registers the built-in augmentation ops)
from scaledl.config.models import ModelConfig
from scaledl.config.overrides import apply_override, override_key
from scaledl.config.recipe import Recipe
from scaledl.errors import RecipeError
from scaledl.validation import validate

__all__ = ["ModelConfig", "Recipe", "apply_override", "load_recipe", "validate_recipe"]


BUILTIN_RECIPE = Path(__file__).parent / "recipes" / "digits-cnn.yaml"
# Recipe values that are paths; `digits` and other built-in names are not.
PATH_KEYS = (("data", "source"), ("data", "cache_dir"), ("data", "text", "tokenizer_from"))
BUILTIN_SOURCES = {"digits"}


def load_recipe(path: Path | str | None = None, overrides: list[str] | None = None) -> Recipe:
    """Read a YAML recipe (None: the built-in digits CNN) and apply `key.path=value` overrides."""
    source = Path(path) if path is not None else BUILTIN_RECIPE
    if not source.is_file():
        raise RecipeError(f"recipe {source} does not exist (expected a YAML file)")
    try:
        raw = yaml.safe_load(source.read_text()) or {}
    except yaml.YAMLError as exc:
        raise RecipeError(f"recipe {source} is not valid YAML: {_yaml_problem(exc)}") from None
    if not isinstance(raw, dict):
        raise RecipeError(f"recipe {source} must be a mapping of sections (data, model, train, …)")
    resolve_paths(raw, source.parent.absolute(), f"recipe {source}")
    for item in overrides or []:
        apply_override(raw, item)
        resolve_paths(raw, Path.cwd(), f"--set {item!r}", only=override_key(item))
    return validate_recipe(raw, str(source))


def resolve_paths(
    raw: dict[str, Any], base: Path, where: str, only: tuple[str, ...] | None = None
) -> None:
    """Make the recipe's relative paths absolute against `base` (in place).

    `only` limits it to the path keys under one `--set` key (e.g. `data` or `data.source`).
    """
    for keys in PATH_KEYS:
        if only is not None and keys[: len(only)] != only[: len(keys)]:
            continue
        node: Any = raw
        for part in keys[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        key = keys[-1]
        value = node.get(key) if isinstance(node, dict) else None
        if not isinstance(value, str) or not value.strip() or value.strip() in BUILTIN_SOURCES:
            continue
        path = Path(value.strip()).expanduser()
        if path.is_absolute():
            continue
        resolved = Path(os.path.normpath(base / path))
        if key == "source" and not resolved.exists() and path.exists() and base != Path.cwd():
            raise RecipeError(
                f"{where}: data.source {value!r} is read relative to the recipe's folder "
                f"({base}), where it does not exist; it exists relative to the current folder, "
                f"so write it as {os.path.relpath(path.absolute(), base)!r} or as an absolute path"
            )
        assert isinstance(node, dict)
        node[key] = str(resolved)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line: the problem and where (PyYAML's own text spans several lines)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


def validate_recipe(raw: dict[str, Any], where: str = "recipe") -> Recipe:
    return validate(Recipe, raw, where, RecipeError)
