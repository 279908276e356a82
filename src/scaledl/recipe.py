"""Typed recipes: one config per stage, read from YAML, overridable with `--set a.b=value`.

The resolved recipe (defaults filled in) is saved beside every output, so a run can be repeated.
"""

from __future__ import annotations

import hashlib
import json
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

        if self.family != "custom":
            try:
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


def load_recipe(path: Path | str | None = None, overrides: list[str] | None = None) -> Recipe:
    """Read a YAML recipe (None: the built-in digits CNN) and apply `key.path=value` overrides."""
    source = Path(path) if path is not None else BUILTIN_RECIPE
    if not source.is_file():
        raise RecipeError(f"recipe {source} does not exist (expected a YAML file)")
    try:
        raw = yaml.safe_load(source.read_text()) or {}
    except yaml.YAMLError as exc:
        raise RecipeError(f"recipe {source} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise RecipeError(f"recipe {source} must be a mapping of sections (data, model, train, …)")
    for item in overrides or []:
        apply_override(raw, item)
    return validate_recipe(raw, str(source))


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
