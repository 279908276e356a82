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
    path = dotted(loc)
    if error.get("type") == "extra_forbidden":
        parent = _section(model, loc[:-1]) if model is not None else None
        where = dotted(loc[:-1]) or "top level"
        valid = f" (valid keys in {where}: {', '.join(parent.model_fields)})" if parent else ""
        return f"unknown key {path!r}{valid}"
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if error.get("type") == "literal_error":
        expected = str((error.get("ctx") or {}).get("expected", ""))
        message = "must be one of " + expected.replace("'", "").replace(" or ", ", ")
    shown = _shown(error.get("input"))
    return f"field {path!r}: {message}{shown}" if path else f"{message}{shown}"


def dotted(loc: tuple[Any, ...]) -> str:
    """`('signature', 'inputs', 0, 'shape')` → `signature.inputs[0].shape`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _shown(value: Any) -> str:
    if isinstance(value, dict | list) or value is None:
        return ""
    text = repr(value)
    if len(text) > MAX_INPUT_SHOWN:
        text = text[: MAX_INPUT_SHOWN - 1] + "…"
    return f" (got {type(value).__name__} {text})"


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
