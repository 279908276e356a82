"""CLI flags derived from typed configs: each default and help text is the config field's.

A verb lists the config it exposes; the flags (name, default, help, type) come from the
model's fields, and only the flags typed on the command line reach the config, so a value
the user did not give keeps its config default, environment variable or file value:

    FLAGS = ConfigFlags(OptimizeConfig, exclude=("settings", "keep"))

    @FLAGS.add
    def optimize(ctx: typer.Context, package: Path = typer.Argument(...), **flags: Any) -> None:
        given = FLAGS.given(ctx, flags)  # e.g. {"batch_size": 8}, nested like the model
        config = validate(OptimizeConfig, given, "scaledl optimize", UsageError, FLAGS.names(ctx))

A field's flag is `--` + its name with dashes unless its metadata (`scaledl.config.flags.flag`)
or the verb (`include={"drift.alpha": "--monitor-alpha"}`) names it; nested models are
flattened (`batching.max_queue` → `--max-queue`).
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from scaledl.config.flags import flag_spec
from scaledl.errors import UsageError
from scaledl.validation import Names

F = TypeVar("F", bound=Callable[..., Any])
Kind = Literal["value", "flag", "repeat", "separated", "pairs"]


def sentence(text: str) -> str:
    """A field description as help text: capitalized, ending with a full stop."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "?", "!")) else text + "."


def field_help(model: type[BaseModel], name: str) -> str:
    """A field's description as the help of an argument or a hand-made option."""
    return sentence(model.model_fields[name].description or "")


def _optional(annotation: Any) -> Any:
    """`X | None` → X."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


@dataclass(frozen=True)
class ConfigFlag:
    """One field of a config as one command-line option."""

    path: tuple[str, ...]
    field: FieldInfo
    decls: tuple[str, ...]
    help_prefix: str = ""
    env: str | None = None

    @property
    def param(self) -> str:
        return "cfg_" + "__".join(self.path)

    @property
    def spec(self) -> dict[str, Any]:
        return flag_spec(self.field)

    @property
    def unit(self) -> int:
        return int(self.spec.get("unit", 1))

    @property
    def kind(self) -> Kind:
        base = _optional(self.field.annotation)
        origin = typing.get_origin(base)
        if base is bool:
            return "flag"
        if origin is dict:
            return "pairs"
        if origin is list:
            return "separated" if self.spec.get("separator") else "repeat"
        return "value"

    @property
    def flag(self) -> str:
        return self.decls[0].split("/")[0]

    def annotation(self) -> Any:
        base = _optional(self.field.annotation)
        kind = self.kind
        if kind == "flag":
            return bool
        if kind in ("repeat", "pairs"):
            return list[str] | None
        if kind == "separated":
            return str | None
        if self.unit != 1:
            return int if self.spec.get("whole") else float
        return base | None if self.field.default is None else base

    def default(self) -> Any:
        value = self.field.get_default(call_default_factory=True)
        if self.kind in ("repeat", "pairs", "separated"):
            return None
        if self.unit != 1 and value is not None:
            scaled = value / self.unit
            return int(scaled) if self.spec.get("whole") else scaled
        return value

    def help(self) -> str:
        text = sentence(self.field.description or "")
        if self.help_prefix:  # "With --monitor: samples…", but "…: POST alerts" stays
            first = text[:1] if text[1:2].isupper() else text[:1].lower()
            text = self.help_prefix + first + text[1:]
        if self.unit != 1:
            text += f" In {self.spec.get('unit_name', 'units')}."
        if self.kind == "separated":
            text += f" Separated by {self.spec['separator']!r}."
        if self.env:  # the variable holds the field's value: bytes, not the flag's MiB
            in_bytes = self.unit != 1 and str(self.spec.get("unit_name", "")).endswith("iB")
            text += f" Env: {self.env}" + (", in bytes." if in_bytes else ".")
        return text

    def option(self) -> Any:
        extra: dict[str, Any] = {}
        if self.kind == "pairs":
            extra["metavar"] = self.spec.get("metavar", "KEY=VALUE")
        return typer.Option(self.default(), *self.decls, help=self.help(), **extra)

    def value(self, given: Any) -> Any:
        """The command-line value in the field's terms (units, lists, maps)."""
        kind = self.kind
        if kind == "separated":
            separator = self.spec["separator"]
            return [v.strip() for v in str(given).split(separator) if v.strip()]
        if kind == "repeat":
            return list(given or [])
        if kind == "pairs":
            return dict(self._pair(item) for item in given or [])
        if self.unit != 1 and given is not None:
            return int(given * self.unit)
        return given

    def _pair(self, item: str) -> tuple[str, str]:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            metavar = self.spec.get("metavar", "KEY=VALUE")
            raise UsageError(f"{self.flag} {item!r}: expected {metavar}")
        return key, value


class ConfigFlags:
    """The flags of one config model, added to a typer command's signature."""

    def __init__(
        self,
        model: type[BaseModel],
        *,
        include: Iterable[str] | Mapping[str, str] | None = None,
        exclude: Iterable[str] = (),
        help_prefix: str = "",
        env: Callable[[tuple[str, ...]], str | None] | None = None,
    ) -> None:
        renamed = dict(include) if isinstance(include, Mapping) else {}
        paths = list(include) if include is not None else None
        fields = dict(_leaves(model))
        chosen = paths if paths is not None else [p for p in fields if p not in set(exclude)]
        self.model = model
        self.flags = [
            ConfigFlag(
                path=tuple(path.split(".")),
                field=fields[path],
                decls=_decls(path, fields[path], renamed.get(path)),
                help_prefix=help_prefix,
                env=env(tuple(path.split("."))) if env else None,
            )
            for path in chosen
        ]

    def add(self, func: F) -> F:
        """Append the flags to `func`'s signature; typer passes them into its `**flags`."""
        signature = inspect.signature(func, eval_str=True)
        own = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
        taken = {p.name for p in own}
        extra = []
        for item in self.flags:
            if item.param in taken:
                raise TypeError(f"{func.__name__}: parameter {item.param} is defined twice")
            extra.append(
                inspect.Parameter(
                    item.param,
                    inspect.Parameter.KEYWORD_ONLY,
                    default=item.option(),
                    annotation=item.annotation(),
                )
            )
        # after the arguments (and flags added before), ahead of the verb's own options
        ordered = [p.replace(kind=p.KEYWORD_ONLY) for p in own if p.kind is not p.VAR_POSITIONAL]
        at = max(
            (i + 1 for i, p in enumerate(ordered) if _leading(p)),
            default=0,
        )
        parameters = [*ordered[:at], *extra, *ordered[at:]]
        func.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        return func

    def given(self, ctx: typer.Context, values: Mapping[str, Any]) -> dict[str, Any]:
        """The flags typed on the command line, as a nested mapping of field values."""
        out: dict[str, Any] = {}
        for item in self.flags:
            if typed(ctx, item.param):
                set_path(out, item.path, item.value(values[item.param]))
        return out

    def names(self, ctx: typer.Context) -> Names:
        """A field's location → the flag that set it on this command line (for error messages)."""
        given = {item.path: item for item in self.flags if typed(ctx, item.param)}

        def name(loc: tuple[Any, ...]) -> str | None:
            for depth in range(len(loc), 0, -1):  # an error inside a list names the list's flag
                item = given.get(tuple(str(p) for p in loc[:depth]))
                if item is not None:
                    return (
                        f"{item.flag} (as {'.'.join(item.path)})" if item.unit != 1 else item.flag
                    )
            return None

        return name

    def given_any(self, ctx: typer.Context) -> list[str]:
        """The flags of this group typed on the command line."""
        return [item.flag for item in self.flags if typed(ctx, item.param)]


def with_set_items(items: Iterable[str], names: Names | None = None) -> Names:
    """`names`, but a field a `--set key.path=value` item gave is named as that item."""
    from scaledl.config.overrides import override_key
    from scaledl.validation import dotted

    keys = {override_key(item) for item in items}

    def name(loc: tuple[Any, ...]) -> str | None:
        for depth in range(len(loc), 0, -1):  # --set wins over the flags, so it is asked first
            if tuple(str(p) for p in loc[:depth]) in keys:
                return f"--set {dotted(loc)}"
        return names(loc) if names is not None else None

    return name


def _leading(parameter: inspect.Parameter) -> bool:
    """What generated flags follow: the context, arguments, required options, earlier flags."""
    default = parameter.default
    if default is inspect.Parameter.empty or parameter.name.startswith("cfg_"):
        return True
    required = getattr(default, "default", None) is ...
    return required or type(default).__name__ == "ArgumentInfo"


def typed(ctx: typer.Context, param: str) -> bool:
    """Whether the user gave `param` on the command line (not its default)."""
    source = ctx.get_parameter_source(param)
    return source is not None and source.name == "COMMANDLINE"


def _leaves(model: type[BaseModel], prefix: str = "") -> Iterable[tuple[str, FieldInfo]]:
    """Every field of `model` by dotted path; nested models are flattened into their fields."""
    for name, field in model.model_fields.items():
        annotation = _optional(field.annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _leaves(annotation, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", field


def _decls(path: str, field: FieldInfo, renamed: str | None) -> tuple[str, ...]:
    if renamed:
        return (renamed,)
    declared = flag_spec(field).get("decls")
    if declared:
        return tuple(declared)
    return ("--" + path.rsplit(".", 1)[-1].replace("_", "-"),)


def set_path(raw: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """raw[a][b] = value for path (a, b), creating sections on the way."""
    node = raw
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value


def merged(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """`top` over `base`, section by section (nested mappings are merged, not replaced)."""
    out = dict(base)
    for key, value in top.items():
        below = out.get(key)
        both = isinstance(value, Mapping) and isinstance(below, Mapping)
        out[key] = merged(below, value) if both else value  # type: ignore[arg-type]
    return out


def read_config_file(path: Path) -> dict[str, Any]:
    """A `--config FILE`: a YAML (or JSON) mapping of sections; unreadable → exit 2 naming it."""
    import yaml

    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        problem = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
        raise UsageError(f"--config {path}: cannot read it ({problem})") from None
    if not isinstance(raw, dict):
        raise UsageError(f"--config {path}: expected a mapping of sections, e.g. finetune: …")
    return raw
