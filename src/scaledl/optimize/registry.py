"""Compression methods: a typed config + a registered handler (torchao's `quantize_` pattern).

A method is registered once with

    @register_method("int8-static", config=StaticInt8Config, space=StaticInt8Space, kind="graph")
    def static_int8(candidate, config, ctx) -> Candidate: ...

and from then on the search can try it, the CLI accepts it in `--methods`, `--set NAME.KEY=V`
tunes its search space, and `apply_method(candidate, config, ctx)` dispatches on the config's
type. Nothing else is edited to add a method: no chain of ifs.

- `config`: one concrete application (e.g. prune at ratio 0.5); its `tag()` is the lineage entry.
- `space`: what the search tries (e.g. ratios 0.3, 0.5, 0.7), expanded with `configs(ctx)`.
  `unavailable(ctx)` returns a reason when the method cannot run here at all (no weights, a CPU
  without bf16, ...), so it is skipped and the report says why.
- `kind`: "structure" changes the PyTorch model (needs weights), "finetune" trains it,
  "graph" rewrites the ONNX graph (works on ONNX-only packages too). A structure method says
  what must follow it (`finetune`): a fine-tune ("after"), full training ("scratch", a new
  architecture) or nothing ("none": e.g. zeroed weights that a fine-tune would refill).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from scaledl.errors import UsageError

if TYPE_CHECKING:
    from scaledl.optimize.candidate import Candidate
    from scaledl.optimize.context import SearchContext

Kind = Literal["structure", "finetune", "graph"]
# What a structural change needs afterwards: a fine-tune, full training, or nothing.
Finetune = Literal["after", "scratch", "none"]
# Modules whose import registers the built-in methods (imported on first use: they are light,
# the heavy libraries they call are imported inside the handlers).
BUILTIN_MODULES = (
    "scaledl.optimize.handlers.structure",
    "scaledl.optimize.handlers.quantization",
    "scaledl.optimize.handlers.frontend",
)


class MethodSkipped(Exception):
    """A method does not apply to this model/target; the reason is reported, the search goes on."""


class MethodConfig(BaseModel):
    """One concrete application of a method."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def tag(self) -> str:
        raise NotImplementedError


class MethodSpace(BaseModel):
    """The values of a method the search tries (tuned with `--set NAME.KEY=VALUE`)."""

    model_config = ConfigDict(extra="forbid")

    def configs(self, ctx: SearchContext) -> list[MethodConfig]:
        raise NotImplementedError

    def unavailable(self, ctx: SearchContext) -> str | None:
        return None


Handler = Callable[["Candidate", Any, "SearchContext"], "Candidate"]


@dataclass(frozen=True)
class Method:
    name: str
    config: type[MethodConfig]
    space: type[MethodSpace]
    handler: Handler
    kind: Kind
    needs_weights: bool
    default: bool
    summary: str
    finetune: Finetune = "after"

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "needs_weights": self.needs_weights,
            "default": self.default,
            "summary": self.summary,
            "settings": self.space().model_dump(mode="json"),
        }


_METHODS: dict[str, Method] = {}
_BY_CONFIG: dict[type[MethodConfig], Method] = {}


def register_method(
    name: str,
    *,
    config: type[MethodConfig],
    space: type[MethodSpace],
    kind: Kind,
    needs_weights: bool | None = None,
    default: bool = True,
    summary: str = "",
    finetune: Finetune = "after",
) -> Callable[[Handler], Handler]:
    """Decorator registering `handler(candidate, config, ctx) -> Candidate` under `name`."""

    def wrap(handler: Handler) -> Handler:
        method = Method(
            name=name,
            config=config,
            space=space,
            handler=handler,
            kind=kind,
            needs_weights=kind != "graph" if needs_weights is None else needs_weights,
            default=default,
            summary=summary or (handler.__doc__ or "").strip().splitlines()[0],
            finetune=finetune,
        )
        _METHODS[name] = method
        _BY_CONFIG[config] = method
        return handler

    return wrap


def unregister_method(name: str) -> None:
    """Remove a method (plugins and tests); unknown names are ignored."""
    method = _METHODS.pop(name, None)
    if method is not None:
        _BY_CONFIG.pop(method.config, None)


def _load_builtins() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def methods() -> dict[str, Method]:
    _load_builtins()
    return dict(_METHODS)


def method_names() -> list[str]:
    return sorted(methods())


def default_method_names() -> list[str]:
    return sorted(name for name, m in methods().items() if m.default)


def get_method(name: str) -> Method:
    known = methods()
    if name not in known:
        raise UsageError(f"unknown method {name!r}; valid methods: {', '.join(sorted(known))}")
    return known[name]


def resolve_methods(names: list[str] | None) -> list[Method]:
    """The methods a search uses: `names` (validated) or the defaults."""
    if names is None:
        return [get_method(n) for n in default_method_names()]
    if not names:
        raise UsageError(f"--methods is empty; valid methods: {', '.join(method_names())}")
    return [get_method(n) for n in dict.fromkeys(names)]


def build_space(method: Method, settings: dict[str, Any] | None) -> MethodSpace:
    """The method's search space with the user's settings; bad keys name the valid ones."""
    try:
        return method.space.model_validate(settings or {})
    except ValidationError as exc:
        valid = ", ".join(method.space.model_fields)
        problems = "; ".join(
            f"{method.name}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise UsageError(f"{problems} (valid settings of {method.name}: {valid})") from None


def method_for(config: MethodConfig) -> Method:
    _load_builtins()
    try:
        return _BY_CONFIG[type(config)]
    except KeyError:
        raise UsageError(f"no method is registered for {type(config).__name__}") from None


def apply_method(candidate: Candidate, config: MethodConfig, ctx: SearchContext) -> Candidate:
    """Apply one method to a candidate (dispatch on the config's type)."""
    method = method_for(config)
    if method.needs_weights and candidate.module is None:
        raise MethodSkipped(f"{method.name} needs PyTorch weights; this candidate has none")
    return method.handler(candidate, config, ctx)
