"""Models whose odd units are dead (all their weights zero), for exact pruning checks.

A dead unit contributes exactly nothing, so a pruner that ranks by magnitude must remove
precisely those units, and the pruned model must compute what the original computes.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from scaledl.models import ModelSpec

SPECS = {
    "cnn": ModelSpec("cnn", [1, 8, 8], 10, {"channels": [16, 32], "depth": 2}),
    "cnn-residual": ModelSpec(
        "cnn", [3, 16, 16], 10, {"channels": [16, 32], "depth": 3, "residual": True}
    ),
    "cnn-staged": ModelSpec(
        "cnn",
        [3, 16, 16],
        10,
        {"channels": [16, 32, 32], "depth": [1, 3, 2], "residual": True, "global_pool": "max"},
    ),
    "cnn-nobn": ModelSpec("cnn", [1, 8, 8], 10, {"channels": [16, 32], "batch_norm": False}),
    "mlp": ModelSpec("mlp", [1, 8, 8], 10, {"hidden": [32, 16], "batch_norm": True}),
    "transformer": ModelSpec(
        "transformer", [1, 8, 8], 10, {"d_model": 32, "heads": 4, "layers": 2, "ff": 32}
    ),
    "gru-bidirectional": ModelSpec(
        "rnn",
        [1, 8, 8],
        10,
        {"cell": "gru", "hidden": [32, 16], "layers": 2, "bidirectional": True},
    ),
    "lstm": ModelSpec("rnn", [8, 4], 10, {"cell": "lstm", "hidden": 16, "layers": 2}),
}


def odd(n: int) -> torch.Tensor:
    return torch.arange(1, n, 2)


def trained_like(spec: ModelSpec, seed: int = 0) -> nn.Module:
    """A randomly initialized model with non-trivial batch-norm statistics, in eval mode."""
    torch.manual_seed(seed)
    model = spec.build()
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(16, *spec.input_shape))
    return model.eval()


@torch.no_grad()
def kill_cnn_or_mlp(model: nn.Module) -> None:
    """Zero odd output channels/neurons everywhere and the inputs that read them."""
    first = True
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            w = module.weight
            if module is not model.get_submodule("head"):
                w[odd(w.shape[0])] = 0
                if module.bias is not None:
                    module.bias[odd(w.shape[0])] = 0
            if not first:
                w[:, odd(w.shape[1])] = 0
            first = False
        elif isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
            module.weight[odd(module.num_features)] = 0
            module.bias[odd(module.num_features)] = 0


@torch.no_grad()
def kill_transformer(model: nn.Module) -> None:
    """Zero odd heads (q, k, v rows and output columns) and odd feed-forward neurons."""
    for block in model.get_submodule("blocks"):
        attn = block.attn
        heads, hd = attn.heads, attn.head_dim
        for head in odd(heads).tolist():
            for part in range(3):
                rows = slice(part * heads * hd + head * hd, part * heads * hd + (head + 1) * hd)
                attn.qkv.weight[rows] = 0
                attn.qkv.bias[rows] = 0
            attn.out.weight[:, head * hd : (head + 1) * hd] = 0
        first, second = block.ff[0], block.ff[3]
        first.weight[odd(first.out_features)] = 0
        first.bias[odd(first.out_features)] = 0
        second.weight[:, odd(first.out_features)] = 0


def dead_units(hidden: int, direction: int) -> torch.Tensor:
    """Forward direction: odd units; backward direction: even units (checks each direction)."""
    return torch.arange(1 - direction, hidden, 2)


@torch.no_grad()
def kill_rnn(model: nn.Module) -> None:
    rnns = list(model.get_submodule("rnns"))
    for i, rnn in enumerate(rnns):
        h, gates = rnn.hidden_size, {"GRU": 3, "LSTM": 4}[rnn.mode]
        suffixes = ["", "_reverse"] if rnn.bidirectional else [""]
        readers = (
            [getattr(rnns[i + 1], f"weight_ih_l0{s}") for s in suffixes]
            if i + 1 < len(rnns)
            else [model.get_submodule("head").weight]
        )
        for d, sfx in enumerate(suffixes):
            units = dead_units(h, d)
            rows = torch.cat([units + g * h for g in range(gates)])
            for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
                getattr(rnn, name + sfx)[rows] = 0
            getattr(rnn, "weight_hh_l0" + sfx)[:, units] = 0
            for reader in readers:
                reader[:, units + d * h] = 0


def dead_model(name: str) -> tuple[ModelSpec, nn.Module]:
    spec = SPECS[name]
    model = trained_like(spec)
    if spec.family == "transformer":
        kill_transformer(model)
    elif spec.family == "rnn":
        kill_rnn(model)
    else:
        kill_cnn_or_mlp(model)
    return spec, model


def one_thread() -> Iterator[None]:
    """Fixture body: torch on one thread (two threads thrash on a busy 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
