"""What every structured-pruning handler shares: options, outcome, the family registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from scaledl.errors import ModelError
from scaledl.optimize.prune.importance import Calibration, compute_gradients


@dataclass
class PruneOptions:
    ratio: float  # fraction of units to remove (channels, neurons, hidden units, ff neurons)
    importance: str = "magnitude"
    round_to: int = 8
    steps: int = 1
    calibration: Calibration | None = None
    global_ranking: bool = True
    head_ratio: float | None = None  # attention heads (None: same as ratio)

    def keep_fraction(self, step: int, heads: bool = False) -> float:
        """Fraction of the original units left after `step` of `steps` equal steps."""
        ratio = self.ratio if not heads or self.head_ratio is None else self.head_ratio
        return 1.0 - ratio * step / self.steps

    def prepare_step(self, model: nn.Module) -> None:
        """Taylor importance needs fresh gradients on the current (already pruned) model."""
        if self.importance == "taylor" and self.calibration is not None:
            compute_gradients(model, self.calibration)

    def finish_step(self, model: nn.Module) -> None:
        model.zero_grad(set_to_none=True)


@dataclass
class Outcome:
    """What a family handler did to the model (in place) and the knobs that rebuild it."""

    knobs: dict[str, Any]
    removed: dict[str, int]
    skipped: list[str] = field(default_factory=list)


Handler = Callable[[nn.Module, Any, PruneOptions], Outcome]
_HANDLERS: dict[str, Handler] = {}


def register_pruner(family: str) -> Callable[[Handler], Handler]:
    """Decorator: `@register_pruner("cnn") def prune_cnn(model, spec, options) -> Outcome`."""

    def wrap(handler: Handler) -> Handler:
        _HANDLERS[family] = handler
        return handler

    return wrap


def handler_for(family: str) -> Handler:
    import scaledl.optimize.prune.attention
    import scaledl.optimize.prune.recurrent
    import scaledl.optimize.prune.structured
    import scaledl.optimize.prune.text  # noqa: F401  (registers text:mlp/cnn/rnn/transformer)

    if family not in _HANDLERS:
        raise ModelError(
            f"structured pruning does not handle the {family!r} family; "
            f"valid: {', '.join(sorted(k for k in _HANDLERS if ':' not in k))}, each also on "
            "text (the pruned model must be rebuilt "
            "from model.json, which a custom class cannot express)"
        )
    return _HANDLERS[family]


def pruned_families() -> list[str]:
    handler_for("cnn")
    return sorted(_HANDLERS)


def subset_linear(
    layer: nn.Linear, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None
) -> nn.Linear:
    """A new Linear holding only the given output rows and input columns of `layer`."""
    weight = layer.weight.detach()
    if rows is not None:
        weight = weight[rows]
    if cols is not None:
        weight = weight[:, cols]
    new = nn.Linear(weight.shape[1], weight.shape[0], bias=layer.bias is not None)
    with torch.no_grad():
        new.weight.copy_(weight)
        if layer.bias is not None:
            bias = layer.bias.detach()
            new.bias.copy_(bias[rows] if rows is not None else bias)
    return new.to(layer.weight.device)
