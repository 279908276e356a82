"""Structured pruning of the text families (`scaledl.models.text`).

- every family but the transformer: embedding dimensions — a column of the token (and bigram)
  table and the input it feeds in the first layer (a linear layer's column, a convolution's
  input channel, a recurrence's input column);
- `cnn`: filters of each width, with the head's columns that read them;
- `mlp`: hidden neurons (a row of one linear layer, a column of the next);
- `rnn`: hidden units per layer, the same count in both directions (gate-aware slicing), with
  every column that reads them (the next layer's inputs, the head's max and mean parts);
- `transformer`: attention heads and feed-forward neurons, as for the image transformer (the
  residual width is shared by every block and kept).

Embedding dimensions are cut at the same ratio as the other units, so a ratio shrinks both the
width of the first layer's input and the layer itself.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from scaledl.optimize.prune.allocate import Group, allocate, highest
from scaledl.optimize.prune.attention import prune_transformer
from scaledl.optimize.prune.base import Outcome, PruneOptions, register_pruner, subset_linear
from scaledl.optimize.prune.importance import unit_scores
from scaledl.optimize.prune.recurrent import own_scores, slice_recurrent


def _cols(count: int) -> torch.Tensor:
    return torch.arange(count)[:, None]


# ---- embedding dimensions -------------------------------------------------------------------
def _embedding_readers(model: Any) -> list[tuple[torch.Tensor, int]]:
    """(weight, axis) of every tensor that reads the embedding dimensions."""
    if hasattr(model, "convs"):
        return [(conv.weight, 1) for conv in model.convs]
    if hasattr(model, "forward_rnns"):
        return [(r.weight_ih_l0, 1) for r in [model.forward_rnns[0], *model.backward_rnns[:1]]]
    first = model.hidden[0] if len(model.hidden) else model.head
    return [(first.weight, 1)]


def _embedding_scores(model: Any, importance: str) -> torch.Tensor:
    dims = model.tokens.embed.embedding_dim
    scores = unit_scores(model.tokens.embed.weight, _cols(dims), importance, dim=1)
    if getattr(model, "bigrams", None) is not None:
        scores = scores + unit_scores(model.bigrams.weight, _cols(dims), importance, dim=1)
    for weight, axis in _embedding_readers(model):
        scores = scores + unit_scores(weight, _cols(dims), importance, dim=axis)
    return scores


def _keep_embedding(model: Any, kept: torch.Tensor) -> None:
    def table(old: nn.Embedding) -> nn.Embedding:
        new = nn.Embedding(old.num_embeddings, len(kept), padding_idx=old.padding_idx)
        with torch.no_grad():
            new.weight.copy_(old.weight[:, kept])
        return new

    model.tokens.embed = table(model.tokens.embed)
    if getattr(model, "bigrams", None) is not None:
        model.bigrams = table(model.bigrams)
    if hasattr(model, "convs"):
        for i, conv in enumerate(model.convs):
            model.convs[i] = _conv(conv, in_channels=kept)
    elif hasattr(model, "forward_rnns"):
        model.forward_rnns[0] = slice_recurrent(
            model.forward_rnns[0], kept, [torch.arange(model.forward_rnns[0].hidden_size)]
        )
        if len(model.backward_rnns):
            back = model.backward_rnns[0]
            model.backward_rnns[0] = slice_recurrent(back, kept, [torch.arange(back.hidden_size)])
    elif len(model.hidden):
        model.hidden[0] = subset_linear(model.hidden[0], cols=kept)
    else:
        model.head = subset_linear(model.head, cols=kept)


def _prune_embedding(model: Any, options: PruneOptions, step: int) -> int:
    dims = model.tokens.embed.embedding_dim
    scores = _embedding_scores(model, options.importance)
    group = Group("tokens.embed", scores, _original(model, "embed", dims), options.round_to)
    keep = allocate([group], options.keep_fraction(step), False)[0]
    if keep < dims:
        _keep_embedding(model, torch.tensor(highest(scores, keep)))
    return int(model.tokens.embed.embedding_dim)


def _original(model: Any, name: str, current: int) -> int:
    """A group's size before the first step (remembered on the model while pruning)."""
    key = f"_pruning_original_{name}"
    if not hasattr(model, key):
        object.__setattr__(model, key, current)
    return int(getattr(model, key))


# ---- cnn ---------------------------------------------------------------------------------------
def _conv(conv: nn.Conv1d, out: torch.Tensor | None = None, in_channels: Any = None) -> nn.Conv1d:
    weight = conv.weight.detach()
    bias = conv.bias.detach() if conv.bias is not None else None
    if out is not None:
        weight = weight[out]
        bias = bias[out] if bias is not None else None
    if in_channels is not None:
        weight = weight[:, in_channels]
    pad = int(conv.padding[0]) if isinstance(conv.padding, tuple) else conv.padding
    new = nn.Conv1d(weight.shape[1], weight.shape[0], conv.kernel_size[0], padding=pad)
    with torch.no_grad():
        new.weight.copy_(weight)
        if bias is not None and new.bias is not None:
            new.bias.copy_(bias)
    return new


@register_pruner("text:cnn")
def prune_text_cnn(model: Any, spec: Any, options: PruneOptions) -> Outcome:
    before = [int(c.out_channels) for c in model.convs]
    dims_before = int(model.tokens.embed.embedding_dim)
    for step in range(1, options.steps + 1):
        options.prepare_step(model)
        groups, offset = [], 0
        for i, conv in enumerate(model.convs):
            count = conv.out_channels
            scores = unit_scores(conv.weight, _cols(count), options.importance)
            reads = (torch.arange(count) + offset)[:, None]
            scores = scores + unit_scores(model.head.weight, reads, options.importance, dim=1)
            groups.append(Group(f"convs.{i}", scores, before[i], options.round_to))
            offset += count
        keeps = allocate(groups, options.keep_fraction(step), options.global_ranking)
        head_cols: list[torch.Tensor] = []
        offset = 0
        for i, (group, keep) in enumerate(zip(groups, keeps, strict=True)):
            kept = torch.tensor(highest(group.scores, keep))
            if keep < group.current:
                model.convs[i] = _conv(model.convs[i], out=kept)
            head_cols.append(kept + offset)
            offset += group.current
        model.head = subset_linear(model.head, cols=torch.cat(head_cols))
        _prune_embedding(model, options, step)
        options.finish_step(model)
    widths = [int(c.out_channels) for c in model.convs]
    dims = int(model.tokens.embed.embedding_dim)
    return Outcome(
        knobs={**spec.knobs, "widths": widths, "embed_dim": dims},
        removed={"channels": sum(before) - sum(widths), "embedding_dims": dims_before - dims},
    )


# ---- mlp ---------------------------------------------------------------------------------------
@register_pruner("text:mlp")
def prune_text_mlp(model: Any, spec: Any, options: PruneOptions) -> Outcome:
    linears = [m for m in model.hidden if isinstance(m, nn.Linear)]
    before = [int(m.out_features) for m in linears]
    dims_before = int(model.tokens.embed.embedding_dim)
    for step in range(1, options.steps + 1):
        options.prepare_step(model)
        positions = [i for i, m in enumerate(model.hidden) if isinstance(m, nn.Linear)]
        groups = []
        for j, pos in enumerate(positions):
            layer = model.hidden[pos]
            reader = model.hidden[positions[j + 1]] if j + 1 < len(positions) else model.head
            count = layer.out_features
            scores = unit_scores(layer.weight, _cols(count), options.importance)
            scores = scores + unit_scores(reader.weight, _cols(count), options.importance, dim=1)
            groups.append(Group(f"hidden.{pos}", scores, before[j], options.round_to))
        keeps = allocate(groups, options.keep_fraction(step), options.global_ranking)
        for j, (pos, group, keep) in enumerate(zip(positions, groups, keeps, strict=True)):
            if keep >= group.current:
                continue
            kept = torch.tensor(highest(group.scores, keep))
            model.hidden[pos] = subset_linear(model.hidden[pos], rows=kept)
            if j + 1 < len(positions):
                nxt = positions[j + 1]
                model.hidden[nxt] = subset_linear(model.hidden[nxt], cols=kept)
            else:
                model.head = subset_linear(model.head, cols=kept)
        _prune_embedding(model, options, step)
        options.finish_step(model)
    hidden = [int(m.out_features) for m in model.hidden if isinstance(m, nn.Linear)]
    dims = int(model.tokens.embed.embedding_dim)
    return Outcome(
        knobs={**spec.knobs, "hidden": hidden, "embed_dim": dims},
        removed={"neurons": sum(before) - sum(hidden), "embedding_dims": dims_before - dims},
    )


# ---- rnn ---------------------------------------------------------------------------------------
def _rnn_readers(model: Any, layer: int) -> list[tuple[torch.Tensor, int, int]]:
    """(weight, column offset, stride) of every reader of layer `layer`'s outputs: the next
    layer's input weights, or the head's max and mean parts."""
    directions = 2 if model.bidirectional else 1
    if layer + 1 < len(model.forward_rnns):
        nxt = [model.forward_rnns[layer + 1], *model.backward_rnns[layer + 1 : layer + 2]]
        return [(r.weight_ih_l0, 0, 0) for r in nxt]
    parts = 2 if model.pooling == "max+mean" else 1
    width = model.forward_rnns[layer].hidden_size * directions
    return [(model.head.weight, p * width, 0) for p in range(parts)]


def _rnn_scores(model: Any, layer: int, importance: str) -> list[torch.Tensor]:
    rnns = [model.forward_rnns[layer], *model.backward_rnns[layer : layer + 1]]
    size = rnns[0].hidden_size
    scores = []
    for d, rnn in enumerate(rnns):
        total = own_scores(rnn, 0, importance)
        for weight, offset, _ in _rnn_readers(model, layer):
            cols = (torch.arange(size) + offset + d * size)[:, None]
            total = total + unit_scores(weight, cols, importance, dim=1)
        scores.append(total)
    return scores


def _rnn_rebuild(model: Any, kept: list[list[torch.Tensor]]) -> None:
    directions = 2 if model.bidirectional else 1
    in_cols: torch.Tensor | None = None
    last_width = 0
    for i, units in enumerate(kept):
        size = model.forward_rnns[i].hidden_size
        model.forward_rnns[i] = slice_recurrent(model.forward_rnns[i], in_cols, [units[0]])
        if directions == 2:
            model.backward_rnns[i] = slice_recurrent(model.backward_rnns[i], in_cols, [units[1]])
        in_cols = torch.cat([u + d * size for d, u in enumerate(units)])
        last_width = size * directions
    assert in_cols is not None
    parts = 2 if model.pooling == "max+mean" else 1
    model.head = subset_linear(
        model.head, cols=torch.cat([in_cols + p * last_width for p in range(parts)])
    )


@register_pruner("text:rnn")
def prune_text_rnn(model: Any, spec: Any, options: PruneOptions) -> Outcome:
    original = [int(r.hidden_size) for r in model.forward_rnns]
    directions = 2 if model.bidirectional else 1
    dims_before = int(model.tokens.embed.embedding_dim)
    for step in range(1, options.steps + 1):
        options.prepare_step(model)
        per_layer = [_rnn_scores(model, i, options.importance) for i in range(len(original))]
        groups = [
            Group(f"rnn.{i}", torch.cat(s), original[i], options.round_to, copies=len(s))
            for i, s in enumerate(per_layer)
        ]
        keeps = allocate(groups, options.keep_fraction(step), options.global_ranking)
        if any(k < g.current for k, g in zip(keeps, groups, strict=True)):
            kept = [
                [torch.tensor(highest(s, k)) for s in scores]
                for scores, k in zip(per_layer, keeps, strict=True)
            ]
            _rnn_rebuild(model, kept)
        _prune_embedding(model, options, step)
        options.finish_step(model)
    hidden = [int(r.hidden_size) for r in model.forward_rnns]
    dims = int(model.tokens.embed.embedding_dim)
    return Outcome(
        knobs={**spec.knobs, "hidden": hidden, "embed_dim": dims},
        removed={
            "hidden_units": (sum(original) - sum(hidden)) * directions,
            "embedding_dims": dims_before - dims,
        },
    )


# ---- transformer -------------------------------------------------------------------------------
@register_pruner("text:transformer")
def prune_text_transformer(model: Any, spec: Any, options: PruneOptions) -> Outcome:
    outcome = prune_transformer(model, spec, options)
    outcome.skipped = [
        "tokens, pos, norms, head: the residual width embed_dim is shared by every block; kept",
        *outcome.skipped[1:],
    ]
    return outcome
