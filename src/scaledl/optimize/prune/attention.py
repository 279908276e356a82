"""Attention-head and feed-forward-neuron pruning for the transformer family.

torch-pruning cannot follow the fused qkv projection through its reshape to
(batch, tokens, 3, heads, head_dim): its index mapping fails (IndexError) on this layout, so heads
are removed here directly. A head owns `head_dim` rows in each of q, k and v and the matching
input columns of the output projection; a feed-forward neuron owns a row of the first linear
layer and a column of the second. The residual width `d_model` is shared by the embedding, the
position table, every norm and the head, and is kept.
"""

from __future__ import annotations

from typing import Any

import torch

from scaledl.optimize.prune.allocate import Group, allocate, highest
from scaledl.optimize.prune.base import Outcome, PruneOptions, register_pruner, subset_linear
from scaledl.optimize.prune.importance import unit_scores


def head_rows(heads: int, head_dim: int, kept: torch.Tensor) -> torch.Tensor:
    """qkv output rows of the kept heads, in the (q|k|v, head, dim) layout the forward expects."""
    dims = torch.arange(head_dim)
    per_part = (kept[:, None] * head_dim + dims[None, :]).reshape(-1)
    return torch.cat([part * heads * head_dim + per_part for part in range(3)])


def head_scores(attn: Any, importance: str) -> torch.Tensor:
    heads, hd = int(attn.heads), int(attn.head_dim)
    own = torch.arange(heads * hd).reshape(heads, hd)
    qkv_rows = torch.cat([own + part * heads * hd for part in range(3)], dim=1)
    scores = unit_scores(attn.qkv.weight, qkv_rows, importance)
    scores = scores + unit_scores(attn.out.weight, own, importance, dim=1)
    if attn.qkv.bias is not None:
        scores = scores + unit_scores(attn.qkv.bias, qkv_rows, importance)
    return scores


def ff_scores(ff: Any, importance: str) -> torch.Tensor:
    first, second = ff[0], ff[3]
    own = torch.arange(first.out_features).reshape(-1, 1)
    scores = unit_scores(first.weight, own, importance) + unit_scores(
        second.weight, own, importance, dim=1
    )
    if first.bias is not None:
        scores = scores + unit_scores(first.bias, own, importance)
    return scores


def keep_heads(attn: Any, kept: torch.Tensor) -> None:
    rows = head_rows(int(attn.heads), int(attn.head_dim), kept)
    cols = (kept[:, None] * attn.head_dim + torch.arange(attn.head_dim)[None, :]).reshape(-1)
    attn.qkv = subset_linear(attn.qkv, rows=rows)
    attn.out = subset_linear(attn.out, cols=cols)
    attn.heads = len(kept)


def keep_ff(ff: Any, kept: torch.Tensor) -> None:
    ff[0] = subset_linear(ff[0], rows=kept)
    ff[3] = subset_linear(ff[3], cols=kept)


@register_pruner("transformer")
def prune_transformer(model: Any, spec: Any, options: PruneOptions) -> Outcome:
    blocks = list(model.get_submodule("blocks"))
    heads0 = [int(b.attn.heads) for b in blocks]
    ff0 = [int(b.ff[0].out_features) for b in blocks]
    head_dim = int(blocks[0].attn.head_dim)
    for step in range(1, options.steps + 1):
        options.prepare_step(model)
        hgroups = [
            Group(f"blocks.{i}.attn", head_scores(b.attn, options.importance), heads0[i])
            for i, b in enumerate(blocks)
        ]
        fgroups = [
            Group(f"blocks.{i}.ff", ff_scores(b.ff, options.importance), ff0[i], options.round_to)
            for i, b in enumerate(blocks)
        ]
        hkeep = allocate(hgroups, options.keep_fraction(step, heads=True), options.global_ranking)
        fkeep = allocate(fgroups, options.keep_fraction(step), options.global_ranking)
        for block, hg, hk, fg, fk in zip(blocks, hgroups, hkeep, fgroups, fkeep, strict=True):
            if hk < hg.current:
                keep_heads(block.attn, torch.tensor(highest(hg.scores, hk)))
            if fk < fg.current:
                keep_ff(block.ff, torch.tensor(highest(fg.scores, fk)))
        options.finish_step(model)
    layer_heads = [int(b.attn.heads) for b in blocks]
    layer_ff = [int(b.ff[0].out_features) for b in blocks]
    knobs = {**spec.knobs, "head_dim": head_dim, "layer_heads": layer_heads, "layer_ff": layer_ff}
    removed = {"heads": sum(heads0) - sum(layer_heads), "ff_neurons": sum(ff0) - sum(layer_ff)}
    skipped = ["embed, pos, norms, head: the residual width d_model is shared by every block; kept"]
    skipped += [
        f"blocks.{i}.ff: {n} neurons cannot be rounded below round_to={options.round_to}; kept"
        for i, n in enumerate(ff0)
        if n <= options.round_to and options.ratio > 0
    ]
    return Outcome(knobs=knobs, removed=removed, skipped=skipped)
