"""The family registry (timm's pattern): name → (knobs config, builder)."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import BaseModel

from scaledl.config.models import (
    CUSTOM,
    check_custom_target,
    knob_families,
    knobs_class,
    register_knobs,
    validate_knobs,
)
from scaledl.errors import ModelError

__all__ = [
    "ModelSpec",
    "check_custom_target",
    "create_model",
    "family_names",
    "knobs_class",
    "register_family",
    "validate_knobs",
]

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
        register_knobs(name, knobs)
        return builder

    return wrap


def _lookup(family: str) -> tuple[type[BaseModel], Builder]:
    if family not in _FAMILIES and family in _BUILTIN_MODULES:
        importlib.import_module(_BUILTIN_MODULES[family])
    if family not in _FAMILIES:
        raise ModelError(f"unknown model family {family!r}; valid: {', '.join(family_names())}")
    return _FAMILIES[family]


def family_names() -> list[str]:
    return sorted(set(_FAMILIES) | set(_BUILTIN_MODULES) | set(knob_families()))


# Front-ends whose models are their own form of each family rather than a front-end module
# followed by the plain family: front-end kind → builder(frontend, family, outputs, knobs).
_FRONTEND_FORMS = {"text": "scaledl.models.text:build_from_frontend"}


def has_own_form(frontend: dict[str, Any]) -> bool:
    """True when the families are built in their own form for this front-end's input (text:
    token ids), not as a front-end module followed by a plain family."""
    return frontend.get("kind") in _FRONTEND_FORMS


def is_forecaster(frontend: dict[str, Any] | None) -> bool:
    """True when the front-end hands the family a forecast form (a time-series window): the
    model is a forecaster built around its family, not a front-end followed by a bare family."""
    if frontend is None or has_own_form(frontend):
        return False
    from scaledl.modalities import modality

    _, features = modality(str(frontend.get("kind"))).build_frontend(frontend)
    return getattr(features, "form", None) == "forecast"


TRUST_CODE_FLAG = "--trust-code"
MAX_INPUT_DIM = 1 << 20
MAX_KNOBS_JSON = 16 << 10  # a family's knobs are a few lists of layer widths


class UntrustedCodeError(ModelError):
    """A package or recipe names Python code to import, and the user did not allow it."""


@dataclass
class ModelSpec:
    """What `model.json` holds: enough to rebuild the module without pickle.

    A spec read from a package is untrusted: `from_json` checks every field, and a `custom`
    family (a class named by import path) is only imported with `build(trust_code=True)`.
    """

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
    def from_json(cls, data: Any, source: str = "model.json") -> ModelSpec:
        def bad(what: str, value: Any) -> ModelError:
            shown = repr(value)[:80]
            return ModelError(f"{source}: {what} (got {shown})")

        if not isinstance(data, dict):
            raise bad("must hold a JSON object with family, input_shape, num_outputs", data)
        family, shape, outputs = (
            data.get("family"),
            data.get("input_shape"),
            data.get("num_outputs"),
        )
        knobs, frontend = data.get("knobs", {}), data.get("frontend")
        if not isinstance(family, str) or not 0 < len(family) <= 64:
            raise bad("'family' must be a family name, e.g. cnn", family)
        free_length = isinstance(frontend, dict) and has_own_form(frontend)  # text: ids (N, L)
        if (
            not isinstance(shape, list)
            or not (0 if free_length else 1) <= len(shape) <= 4
            or not all(_is_int(d, 1, MAX_INPUT_DIM) for d in shape)
        ):
            raise bad("'input_shape' must be a list of 1 to 4 positive integers", shape)
        if not _is_int(outputs, 1, MAX_INPUT_DIM):
            raise bad("'num_outputs' must be a positive integer", outputs)
        if not isinstance(knobs, dict) or len(json.dumps(knobs)) > MAX_KNOBS_JSON:
            raise bad(f"'knobs' must be a JSON object of at most {MAX_KNOBS_JSON} bytes", knobs)
        if frontend is not None and (
            not isinstance(frontend, dict)
            or not isinstance(frontend.get("kind"), str)
            or len(json.dumps(frontend)) > MAX_KNOBS_JSON
        ):
            raise bad(
                f"'frontend' must be a JSON object with a 'kind' ({MAX_KNOBS_JSON} bytes)", frontend
            )
        return cls(
            family=family,
            input_shape=list(shape),
            num_outputs=int(outputs or 0),
            knobs=knobs,
            frontend=frontend,
        )

    def build(self, trust_code: bool = False) -> Any:
        if self.frontend is not None:
            return create_with_frontend(self.frontend, self.family, self.num_outputs, self.knobs)
        return create_model(
            self.family,
            tuple(self.input_shape),
            self.num_outputs,
            trust_code=trust_code,
            **self.knobs,
        )


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
    module, features = modality(kind).build_frontend(frontend)
    if getattr(features, "form", None) == "forecast":  # a series: the forecasting bodies
        from scaledl.models.forecast import build_forecaster

        return build_forecaster(family, module, features, knobs)
    return WithFrontEnd(module, create_model(family, features, num_outputs, **knobs))


def _is_int(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def create_model(
    family: str,
    input_shape: tuple[int, ...],
    num_outputs: int,
    *,
    trust_code: bool = False,
    **knobs: Any,
) -> Any:
    """Build an `nn.Module` of `family` for inputs of `input_shape` (batch excluded).

    The `custom` family imports and calls the class `knobs["class_path"]` names; that runs code,
    so it needs `trust_code=True` (`--trust-code` on the command line), following Hugging Face's
    `trust_remote_code`.
    """
    if family == CUSTOM:
        return _import_custom(knobs, trust_code)
    builder = _lookup(family)[1]
    validated = validate_knobs(family, knobs)
    if num_outputs < 1:
        raise ModelError(f"num_outputs must be ≥ 1, got {num_outputs}")
    return builder(tuple(int(d) for d in input_shape), int(num_outputs), validated)


def _import_custom(knobs: dict[str, Any], trust_code: bool) -> Any:
    """`custom` models name an importable class (`module:Class`) and its keyword arguments."""
    target = check_custom_target(knobs)
    if not trust_code:
        raise UntrustedCodeError(
            f"model.class_path names a custom class, {target!r}: building the model would "
            f"import and run that code. scaledl never runs code named by a package or recipe "
            f"unless you pass {TRUST_CODE_FLAG} (only do so for files from someone you trust)"
        )
    module_name, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ModelError(f"custom model class {target!r} cannot be imported ({exc})") from None
    return cls(**knobs.get("kwargs", {}))
