"""One translator from pydantic validation errors to the user's words.

Every typed config, recipe section, server setting and package manifest is a pydantic model;
when one is invalid the user gets one message naming the field (as a dotted path), what was
wrong, and for an unknown key the keys that would be valid.

    try:
        settings = ServeSettings.model_validate(raw)
    except ValidationError as exc:
        raise UsageError(explain(exc, "serve settings", ServeSettings)) from None
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from scaledl.errors import ScaledlError

Model = TypeVar("Model", bound=BaseModel)
MAX_INPUT_SHOWN = 60


def explain(exc: ValidationError, where: str, model: type[BaseModel] | None = None) -> str:
    """`where: problem; problem` for every error pydantic found (a few at most)."""
    problems = [_one(error, model) for error in exc.errors()[:5]]
    more = len(exc.errors()) - len(problems)
    tail = f" (and {more} more)" if more > 0 else ""
    return f"{where}: " + "; ".join(problems) + tail


def validate(
    model: type[Model],
    raw: Any,
    where: str,
    error: Callable[[str], ScaledlError],
) -> Model:
    """`model.model_validate(raw)`, with a failure raised as `error(explain(...))`."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise error(explain(exc, where, model)) from None


def _one(error: Any, model: type[BaseModel] | None) -> str:
    loc = tuple(error.get("loc", ()))
    path = ".".join(str(p) for p in loc)
    if error.get("type") == "extra_forbidden":
        parent = _section(model, loc[:-1]) if model is not None else None
        where = ".".join(str(p) for p in loc[:-1]) or "top level"
        valid = f" (valid keys in {where}: {', '.join(parent.model_fields)})" if parent else ""
        return f"unknown key {path!r}{valid}"
    message = str(error.get("msg", "invalid value"))
    message = message.removeprefix("Value error, ")
    shown = _shown(error.get("input"))
    return f"{path or 'value'}: {message}{shown}"


def _shown(value: Any) -> str:
    if isinstance(value, dict | list) or value is None:
        return ""
    text = repr(value)
    if len(text) > MAX_INPUT_SHOWN:
        text = text[: MAX_INPUT_SHOWN - 1] + "…"
    return f" (got {text})"


def _section(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The nested model a location points into, when each step is a model field."""
    current: type[BaseModel] = model
    for part in loc:
        field = current.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        current = annotation
    return current
