"""One translator from pydantic validation errors to the user's words.

Every typed config, recipe section, server setting and package manifest is a pydantic model;
when one is invalid the user gets one message naming the field (as a dotted path), what was
wrong, and for an unknown key the keys that would be valid. Where the user gave a value under
another name (a CLI flag, an environment variable), `names` maps the field's location to it, so
the message names what the user typed: `--max-batch-size: Input should be ≤ 4096 (got int 5000)`.

    try:
        settings = ServeSettings.model_validate(raw)
    except ValidationError as exc:
        raise UsageError(explain(exc, "serve settings", ServeSettings)) from None
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from scaledl.errors import ScaledlError

Model = TypeVar("Model", bound=BaseModel)
# The user's name for a field's location (e.g. ("batching", "max_queue") → "--max-queue"), or None.
Names = Callable[[tuple[Any, ...]], str | None]
MAX_INPUT_SHOWN = 60


def explain(
    exc: ValidationError,
    where: str,
    model: type[BaseModel] | None = None,
    names: Names | None = None,
) -> str:
    """`where: problem; problem` for every error pydantic found (a few at most)."""
    return explain_errors(exc.errors(), where, model, names)


def explain_errors(
    errors: Sequence[Any],
    where: str,
    model: type[BaseModel] | None = None,
    names: Names | None = None,
) -> str:
    """`explain` for pydantic-style error dicts (e.g. FastAPI's RequestValidationError)."""
    problems = [_one(error, model, names) for error in errors[:5]]
    more = len(errors) - len(problems)
    tail = f" (and {more} more)" if more > 0 else ""
    return f"{where}: " + "; ".join(problems) + tail


def validate(
    model: type[Model],
    raw: Any,
    where: str,
    error: Callable[[str], ScaledlError],
    names: Names | None = None,
) -> Model:
    """`model.model_validate(raw)`, with a failure raised as `error(explain(...))`."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise error(explain(exc, where, model, names)) from None


def _one(error: Any, model: type[BaseModel] | None, names: Names | None) -> str:
    loc = tuple(error.get("loc", ()))
    path = dotted(loc)
    label = names(loc) if names is not None and loc else None
    if error.get("type") == "extra_forbidden":
        parent = _section(model, loc[:-1]) if model is not None else None
        where = f" in {dotted(loc[:-1])}" if loc[:-1] else ""
        valid = f" (valid keys{where}: {', '.join(parent.model_fields)})" if parent else ""
        return f"unknown key {label or repr(path)}{valid}"
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if error.get("type") == "literal_error":
        expected = str((error.get("ctx") or {}).get("expected", ""))
        message = "must be one of " + expected.replace("'", "").replace(" or ", ", ")
    shown = _shown(error.get("input"))
    if label:
        return f"{label}: {message}{shown}"
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
