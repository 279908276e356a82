"""Channel (CNN) and neuron (MLP) pruning on torch-pruning's dependency graph.

torch-pruning's DependencyGraph finds what must shrink together: a conv's output channels, its
batch norm, the next conv's input channels, the residual blocks sharing a stage's width and the
head's input features. Its group importances (L2 magnitude, Taylor) score the channels; the
global ranking and the rounding of kept counts are done by `allocate` so every layer keeps a
multiple of `round_to` channels and none is silently left out.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from scaledl.optimize.prune.allocate import Group, allocate, lowest
from scaledl.optimize.prune.base import Outcome, PruneOptions, register_pruner
from scaledl.optimize.prune.importance import tp_importance


def prune_graph(model: nn.Module, input_shape: list[int], options: PruneOptions) -> Outcome:
    """Prune every Conv2d/Conv1d/Linear output group except the head's; returns units removed."""
    import torch_pruning as tp

    graph = tp.DependencyGraph().build_dependency(
        model, example_inputs=torch.zeros(2, *input_shape)
    )
    names = {module: name for name, module in model.named_modules()}
    scorer: Any = tp_importance(options.importance)
    # the head's outputs are the task's; a frozen stem (patch whitening) says it is not prunable
    ignored = [model.get_submodule("head")]
    ignored += [m for m in model.modules() if not getattr(m, "prunable", True)]
    originals: dict[nn.Module, int] = {}
    skipped: list[str] = []
    for step in range(1, options.steps + 1):
        options.prepare_step(model)
        records = []
        for group in graph.get_all_groups(
            ignored_layers=ignored, root_module_types=[nn.Conv2d, nn.Conv1d, nn.Linear]
        ):
            root, handler = group[0].dep.target.module, group[0].dep.handler
            scores = scorer(group)
            if scores is None:
                skipped.append(f"{names.get(root, root)}: no weights to score; not pruned")
                continue
            size = originals.setdefault(root, len(scores))
            records.append((Group(names[root], scores, size, options.round_to), root, handler))
        keeps = allocate(
            [r[0] for r in records], options.keep_fraction(step), options.global_ranking
        )
        for (group, root, handler), keep in zip(records, keeps, strict=True):
            idxs = lowest(group.scores, keep)
            if idxs:
                graph.get_pruning_group(root, handler, idxs).prune()
        options.finish_step(model)
    removed = sum(size - _out_units(root) for root, size in originals.items())
    skipped += [
        f"{names[root]}: {size} units cannot be rounded below round_to={options.round_to}; kept"
        for root, size in originals.items()
        if size <= options.round_to and options.ratio > 0
    ]
    return Outcome(knobs={}, removed={"units": removed}, skipped=skipped)


def _out_units(module: nn.Module) -> int:
    if isinstance(module, nn.Conv2d | nn.Conv1d):
        return int(module.out_channels)
    return int(module.weight.shape[0])  # type: ignore[index]


def _conv_widths(model: Any) -> list[list[int]]:
    return [
        [int(m.out_channels) for m in stage.modules() if isinstance(m, nn.Conv2d | nn.Conv1d)]
        for stage in model.get_submodule("stages")
    ]


@register_pruner("cnn")
def prune_cnn(model: Any, spec: Any, options: PruneOptions) -> Outcome:
    before = _conv_widths(model)
    outcome = prune_graph(model, spec.input_shape, options)
    widths = _conv_widths(model)
    outcome.knobs = {**spec.knobs, "widths": widths, "channels": [w[-1] for w in widths]}
    # Every conv's output channels count: a residual stage loses a channel in each of its convs.
    outcome.removed = {"channels": sum(map(sum, before)) - sum(map(sum, widths))}
    return outcome


@register_pruner("mlp")
def prune_mlp(model: Any, spec: Any, options: PruneOptions) -> Outcome:
    outcome = prune_graph(model, spec.input_shape, options)
    hidden = [
        int(m.out_features) for m in model.get_submodule("features") if isinstance(m, nn.Linear)
    ]
    outcome.knobs = {**spec.knobs, "hidden": hidden}
    outcome.removed = {"neurons": outcome.removed["units"]}
    return outcome
