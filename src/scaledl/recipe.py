"""Typed recipes: one config per stage, read from YAML, overridable with `--set a.b=value`.

The resolved recipe (defaults filled in) is saved beside every output, so a run can be repeated.
Paths in a recipe file are relative to that file (as users expect, wherever they run scaledl
from); a path given with `--set` is relative to the current folder, where it was typed. Both are
saved as absolute paths, so the recipe copy and a package's lineage still find the data.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from scaledl.data.augment import AugmentConfig
from scaledl.data.config import DataConfig
from scaledl.errors import ModelError, RecipeError
from scaledl.export.config import ExportConfig
from scaledl.train.config import TrainConfig


class ModelConfig(BaseModel):
    """`family` plus that family's knobs, flat (e.g. `{family: cnn, channels: [32, 64]}`)."""

    model_config = ConfigDict(extra="allow")

    family: str = "cnn"

    @model_validator(mode="after")
    def _check_knobs(self) -> ModelConfig:
        from scaledl.models import validate_knobs
        from scaledl.models.registry import check_custom_target

        try:
            if self.family == "custom":
                # only the form is checked: the class is imported at training, with --trust-code
                if self.knobs():
                    check_custom_target(self.knobs())
            else:
                validate_knobs(self.family, self.knobs(), any_form=True)
        except ModelError as exc:
            raise ValueError(str(exc)) from None
        return self

    def knobs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("model", min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    task: Literal["classification", "regression"] = "classification"
    seed: int = 0
    data: DataConfig = Field(default_factory=DataConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def digest(self) -> str:
        body = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()[:16]


BUILTIN_RECIPE = Path(__file__).parent / "recipes" / "digits-cnn.yaml"
# Recipe values that are paths; `digits` and other built-in names are not.
PATH_KEYS = (("data", "source"), ("data", "cache_dir"))
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
        resolve_paths(raw, Path.cwd(), f"--set {item!r}", only=_override_key(item))
    return validate_recipe(raw, str(source))


def resolve_paths(
    raw: dict[str, Any], base: Path, where: str, only: tuple[str, ...] | None = None
) -> None:
    """Make the recipe's relative paths absolute against `base` (in place).

    `only` limits it to the path keys under one `--set` key (e.g. `data` or `data.source`).
    """
    for section, key in PATH_KEYS:
        if only is not None and (section, key)[: len(only)] != only[:2]:
            continue
        node = raw.get(section)
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


def _override_key(item: str) -> tuple[str, ...]:
    return tuple(item.partition("=")[0].strip().split("."))


def validate_recipe(raw: dict[str, Any], where: str = "recipe") -> Recipe:
    try:
        return Recipe.model_validate(raw)
    except ValidationError as exc:
        raise RecipeError(f"{where}: " + "; ".join(_explain(e) for e in exc.errors())) from None


def apply_override(raw: dict[str, Any], item: str) -> None:
    """`train.epochs=3` → raw["train"]["epochs"] = 3 (the value is parsed as YAML)."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise RecipeError(f"--set {item!r}: expected KEY.PATH=VALUE, e.g. train.epochs=3")
    parts = key.strip().split(".")
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise RecipeError(f"--set {item!r}: {part} is not a section")
        node = child
    try:
        node[parts[-1]] = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        node[parts[-1]] = value


def _explain(error: Any) -> str:
    loc = ".".join(str(p) for p in error["loc"])
    if error["type"] == "extra_forbidden":
        parent = _section_model(error["loc"][:-1])
        valid = ", ".join(parent.model_fields) if parent is not None else "?"
        where = ".".join(str(p) for p in error["loc"][:-1]) or "top level"
        return f"unknown key {loc!r} (valid keys in {where}: {valid})"
    return f"{loc or 'recipe'}: {error['msg']}"


def _section_model(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = Recipe
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model
