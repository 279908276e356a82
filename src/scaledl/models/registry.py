"""The family registry (timm's pattern): name → (knobs config, builder)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from scaledl.errors import ModelError

Builder = Callable[[tuple[int, ...], int, Any], Any]
_FAMILIES: dict[str, tuple[type[BaseModel], Builder]] = {}
_BUILTIN_MODULES = {
    "mlp": "scaledl.models.mlp",
    "cnn": "scaledl.models.cnn",
    "rnn": "scaledl.models.rnn",
    "transformer": "scaledl.models.transformer",
}


def register_family(name: str, knobs: type[BaseModel]) -> Callable[[Builder], Builder]:
    """Decorator: `@register_family("cnn", CNNKnobs) def build(input_shape, num_outputs, knobs)`."""

    def wrap(builder: Builder) -> Builder:
        _FAMILIES[name] = (knobs, builder)
        return builder

    return wrap


def _lookup(family: str) -> tuple[type[BaseModel], Builder]:
    if family not in _FAMILIES and family in _BUILTIN_MODULES:
        importlib.import_module(_BUILTIN_MODULES[family])
    if family not in _FAMILIES:
        raise ModelError(f"unknown model family {family!r}; valid: {', '.join(family_names())}")
    return _FAMILIES[family]


def family_names() -> list[str]:
    return sorted(set(_FAMILIES) | set(_BUILTIN_MODULES))


def knobs_class(family: str) -> type[BaseModel]:
    return _lookup(family)[0]


# Families that also read another form of input, with their own knobs under the same name
# (text models: token ids). A recipe's knobs are valid when they fit any form; the modality's
# front-end decides which one is built.
_OTHER_FORMS = {"tokens": "scaledl.models.text:validate_text_knobs"}
# Front-ends whose models are their own form of each family rather than a front-end module
# followed by the plain family: front-end kind → builder(frontend, family, outputs, knobs).
_FRONTEND_FORMS = {"text": "scaledl.models.text:build_from_frontend"}


def validate_knobs(family: str, knobs: dict[str, Any], any_form: bool = False) -> BaseModel:
    cls = _lookup(family)[0]
    try:
        return cls.model_validate(knobs)
    except ValidationError as exc:
        if any_form:
            for target in _OTHER_FORMS.values():
                module, _, attr = target.partition(":")
                try:
                    validated: BaseModel = getattr(importlib.import_module(module), attr)(
                        family, knobs
                    )
                    return validated
                except ModelError:
                    pass
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or family}: {e['msg']}" for e in exc.errors()
        )
        valid = ", ".join(cls.model_fields)
        raise ModelError(f"model knobs for {family!r}: {problems} (valid knobs: {valid})") from None


@dataclass
class ModelSpec:
    """What `model.json` holds: enough to rebuild the module without pickle."""

    family: str
    input_shape: list[int]
    num_outputs: int
    knobs: dict[str, Any] = field(default_factory=dict)
    frontend: dict[str, Any] | None = None  # the modality's front-end, when it has one

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        if self.frontend is None:
            body.pop("frontend")
        return body

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelSpec:
        try:
            return cls(
                family=str(data["family"]),
                input_shape=[int(v) for v in data["input_shape"]],
                num_outputs=int(data["num_outputs"]),
                knobs=dict(data.get("knobs", {})),
                frontend=dict(data["frontend"]) if data.get("frontend") is not None else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"model.json is malformed ({exc!r})") from None

    def build(self) -> Any:
        if self.frontend is not None:
            return create_with_frontend(self.frontend, self.family, self.num_outputs, self.knobs)
        return create_model(self.family, tuple(self.input_shape), self.num_outputs, **self.knobs)


def create_with_frontend(
    frontend: dict[str, Any], family: str, num_outputs: int, knobs: dict[str, Any]
) -> Any:
    """The modality's front-end followed by `family` built for the features it produces."""
    from scaledl.modalities import modality
    from scaledl.models.frontend import WithFrontEnd

    kind = frontend.get("kind")
    if not isinstance(kind, str):
        raise ModelError("a front-end config needs the kind of its modality")
    if kind in _FRONTEND_FORMS:  # the family's own form for this input (text: token ids)
        module_name, _, attr = _FRONTEND_FORMS[kind].partition(":")
        return getattr(importlib.import_module(module_name), attr)(
            frontend, family, num_outputs, knobs
        )
    module, feature_shape = modality(kind).build_frontend(frontend)
    return WithFrontEnd(module, create_model(family, feature_shape, num_outputs, **knobs))


def create_model(family: str, input_shape: tuple[int, ...], num_outputs: int, **knobs: Any) -> Any:
    """Build an `nn.Module` of `family` for inputs of `input_shape` (batch excluded)."""
    if family == "custom":
        return _import_custom(knobs)
    builder = _lookup(family)[1]
    validated = validate_knobs(family, knobs)
    if num_outputs < 1:
        raise ModelError(f"num_outputs must be ≥ 1, got {num_outputs}")
    return builder(tuple(int(d) for d in input_shape), int(num_outputs), validated)


def _import_custom(knobs: dict[str, Any]) -> Any:
    """`custom` models name an importable class (`module:Class`) and its keyword arguments."""
    target = knobs.get("class_path")
    if not isinstance(target, str) or ":" not in target:
        raise ModelError("a custom model needs knobs.class_path = 'package.module:ClassName'")
    module_name, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ModelError(f"custom model class {target!r} cannot be imported ({exc})") from None
    return cls(**knobs.get("kwargs", {}))
