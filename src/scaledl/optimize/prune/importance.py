"""Unit importance: weight magnitude, or first-order Taylor (|w · ∂L/∂w|) on calibration data.

Magnitude needs no data. Taylor estimates how much the loss would change if a unit's weights
were zeroed, from one pass of gradients over a calibration batch; it is recomputed at every
step of an iterative schedule because the gradients change once units are gone.
"""

from __future__ import annotations

import torch
from torch import nn

from scaledl.errors import UsageError

IMPORTANCES = ("magnitude", "taylor")
Calibration = tuple[torch.Tensor, torch.Tensor]


def check_importance(importance: str, calibration: Calibration | None) -> None:
    if importance not in IMPORTANCES:
        raise UsageError(f"importance {importance!r}: valid values are {', '.join(IMPORTANCES)}")
    if importance == "taylor" and calibration is None:
        raise UsageError("taylor importance needs calibration data: pass calibration=(x, y)")


def compute_gradients(model: nn.Module, calibration: Calibration, batch_size: int = 256) -> None:
    """Fill every parameter's .grad with the calibration loss gradient (eval mode: BN frozen)."""
    x, y = calibration
    model.eval()
    model.zero_grad(set_to_none=True)
    classification = not torch.is_floating_point(y)
    for start in range(0, len(x), batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        out = model(xb)
        if classification:
            loss = nn.functional.cross_entropy(out, yb, reduction="sum")
        else:
            loss = nn.functional.mse_loss(out.reshape(len(yb), -1)[:, 0], yb, reduction="sum")
        (loss / len(x)).backward()


def per_index(weight: torch.Tensor, importance: str, dim: int = 0) -> torch.Tensor:
    """Score of every index along `dim`: Σ w² (magnitude) or Σ |w · grad| (Taylor)."""
    values = weight.detach().double()
    if importance == "taylor":
        grad = weight.grad
        values = torch.zeros_like(values) if grad is None else (values * grad.double()).abs()
    else:
        values = values.pow(2)
    return values.movedim(dim, 0).reshape(values.shape[dim], -1).sum(1)


def unit_scores(
    weight: torch.Tensor, index: torch.Tensor, importance: str, dim: int = 0
) -> torch.Tensor:
    """Per-unit scores where unit u owns the indices `index[u]` (shape units × k) along `dim`.

    A recurrent hidden unit owns one row per gate; an attention head owns a block of rows in
    each of q, k and v.
    """
    return per_index(weight, importance, dim)[index].sum(1)


def tp_importance(importance: str) -> object:
    """The matching torch-pruning group importance (L2 magnitude or Taylor)."""
    import torch_pruning as tp

    if importance == "taylor":
        return tp.importance.GroupTaylorImportance()
    return tp.importance.GroupMagnitudeImportance(p=2)
