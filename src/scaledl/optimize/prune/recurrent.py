"""Hidden-unit pruning for stacked GRU and LSTM layers (gate-aware weight slicing).

torch-pruning has no GRU support, so hidden units are removed here for both cells. PyTorch
stacks the gates along the rows of each weight (GRU: r, z, n; LSTM: i, f, g, o), so hidden unit
j owns row g·H + j of `weight_ih`, `weight_hh` and both biases for every gate g, plus column j of
`weight_hh` (its own recurrence) and its column in whatever reads the layer's output: the next
layer's `weight_ih` or the head. A bidirectional layer concatenates [forward | backward]
outputs; each direction keeps its own best units, the same number in both.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from scaledl.optimize.prune.allocate import Group, allocate, highest
from scaledl.optimize.prune.base import Outcome, PruneOptions, register_pruner, subset_linear
from scaledl.optimize.prune.importance import unit_scores

GATES = {"GRU": 3, "LSTM": 4}


def _suffixes(rnn: nn.RNNBase) -> list[str]:
    return ["", "_reverse"] if rnn.bidirectional else [""]


def gate_rows(rnn: nn.RNNBase, units: torch.Tensor) -> torch.Tensor:
    """(units, gates) row indices owned by `units` in the gate-stacked weights."""
    gates = torch.arange(GATES[rnn.mode]) * rnn.hidden_size
    return units[:, None] + gates[None, :]


def own_scores(rnn: nn.RNNBase, direction: int, importance: str) -> torch.Tensor:
    """Scores of one direction's hidden units from the layer's own weights."""
    units = torch.arange(rnn.hidden_size)
    rows = gate_rows(rnn, units)
    sfx = _suffixes(rnn)[direction]
    hh = getattr(rnn, f"weight_hh_l0{sfx}")
    scores = unit_scores(getattr(rnn, f"weight_ih_l0{sfx}"), rows, importance)
    scores = (
        scores + unit_scores(hh, rows, importance) + unit_scores(hh, units[:, None], importance, 1)
    )
    if rnn.bias:
        for name in ("bias_ih_l0", "bias_hh_l0"):
            scores = scores + unit_scores(getattr(rnn, name + sfx), rows, importance)
    return scores


def slice_recurrent(
    rnn: nn.RNNBase, in_cols: torch.Tensor | None, kept: list[torch.Tensor]
) -> nn.RNNBase:
    """A new single-layer GRU/LSTM with only the kept hidden units (per direction)."""
    in_size = rnn.input_size if in_cols is None else len(in_cols)
    cell: Any = type(rnn)
    new = cell(
        in_size,
        len(kept[0]),
        batch_first=rnn.batch_first,
        bidirectional=rnn.bidirectional,
        bias=rnn.bias,
    )
    with torch.no_grad():
        for sfx, units in zip(_suffixes(rnn), kept, strict=True):
            rows = gate_rows(rnn, units).T.reshape(-1)  # gate-major, as PyTorch stacks them
            w_ih = getattr(rnn, f"weight_ih_l0{sfx}")[rows]
            getattr(new, f"weight_ih_l0{sfx}").copy_(w_ih if in_cols is None else w_ih[:, in_cols])
            getattr(new, f"weight_hh_l0{sfx}").copy_(
                getattr(rnn, f"weight_hh_l0{sfx}")[rows][:, units]
            )
            if rnn.bias:
                for name in ("bias_ih_l0", "bias_hh_l0"):
                    getattr(new, name + sfx).copy_(getattr(rnn, name + sfx)[rows])
    return new


def output_columns(rnn: nn.RNNBase, kept: list[torch.Tensor]) -> torch.Tensor:
    """Columns of the layer's [forward | backward] output that survive."""
    return torch.cat([units + d * rnn.hidden_size for d, units in enumerate(kept)])


def layer_scores(model: Any, layer: int, importance: str) -> list[torch.Tensor]:
    """Per-direction unit scores: own weights plus the columns that read each unit."""
    rnns = model.get_submodule("rnns")
    rnn = rnns[layer]
    if layer + 1 < len(rnns):
        readers = [getattr(rnns[layer + 1], f"weight_ih_l0{s}") for s in _suffixes(rnns[layer + 1])]
    else:
        readers = [model.get_submodule("head").weight]
    scores = []
    for d in range(len(_suffixes(rnn))):
        cols = (torch.arange(rnn.hidden_size) + d * rnn.hidden_size)[:, None]
        total = own_scores(rnn, d, importance)
        for reader in readers:
            total = total + unit_scores(reader, cols, importance, dim=1)
        scores.append(total)
    return scores


def _rebuild(model: Any, kept: list[list[torch.Tensor]]) -> None:
    rnns = model.get_submodule("rnns")
    in_cols: torch.Tensor | None = None
    for i, units in enumerate(kept):
        old = rnns[i]
        rnns[i] = slice_recurrent(old, in_cols, units)
        in_cols = output_columns(old, units)
    model.head = subset_linear(model.get_submodule("head"), cols=in_cols)


@register_pruner("rnn")
def prune_rnn(model: Any, spec: Any, options: PruneOptions) -> Outcome:
    rnns = model.get_submodule("rnns")
    original = [int(r.hidden_size) for r in rnns]
    for step in range(1, options.steps + 1):
        options.prepare_step(model)
        per_layer = [layer_scores(model, i, options.importance) for i in range(len(rnns))]
        groups = [
            Group(f"rnns.{i}", torch.cat(s), original[i], options.round_to, copies=len(s))
            for i, s in enumerate(per_layer)
        ]
        keeps = allocate(groups, options.keep_fraction(step), options.global_ranking)
        if any(k < g.current for k, g in zip(keeps, groups, strict=True)):
            kept = [
                [torch.tensor(highest(s, k)) for s in scores]
                for scores, k in zip(per_layer, keeps, strict=True)
            ]
            _rebuild(model, kept)
        options.finish_step(model)
    hidden = [int(r.hidden_size) for r in model.get_submodule("rnns")]
    directions = 2 if rnns[0].bidirectional else 1
    skipped = [
        f"rnns.{i}: {n} hidden units cannot be rounded below round_to={options.round_to}; kept"
        for i, n in enumerate(original)
        if n <= options.round_to and options.ratio > 0
    ]
    return Outcome(
        knobs={**spec.knobs, "hidden": hidden},
        removed={"hidden_units": (sum(original) - sum(hidden)) * directions},
        skipped=skipped,
    )
