"""GRU layers written out as MatMuls, the one form of a GRU that ONNX Runtime can quantize.

ORT's dynamic quantizer has no GRU (its IntegerOps cover LSTM, not GRU), and static QDQ leaves
the GRU op in fp32 too. Unrolled, a GRU layer is one input projection for all steps (a MatMul
over (N, T, F)) plus one small MatMul per step, and those quantize like any MatMul. Whether that
wins depends on the batch: at batch 1 the per-step ops cost more than the fused fp32 GRU kernel;
at larger batches the int8 MatMuls can be faster. The search measures it rather than assume.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class UnrolledGRU(nn.Module):
    """Same maths and interface as a one-layer nn.GRU, as explicit per-step operations."""

    def __init__(self, gru: nn.GRU) -> None:
        super().__init__()
        if gru.num_layers != 1:
            raise ValueError("only single-layer GRU modules can be unrolled")
        self.hidden_size = gru.hidden_size
        self.bidirectional = gru.bidirectional
        self.batch_first = gru.batch_first
        directions = 2 if gru.bidirectional else 1
        bias = gru.bias
        size = gru.hidden_size
        ih = [nn.Linear(gru.input_size, 3 * size, bias=bias) for _ in range(directions)]
        hh = [nn.Linear(size, 3 * size, bias=bias) for _ in range(directions)]
        with torch.no_grad():
            for d in range(directions):
                suffix = "_l0" + ("_reverse" if d else "")
                ih[d].weight.copy_(getattr(gru, "weight_ih" + suffix))
                hh[d].weight.copy_(getattr(gru, "weight_hh" + suffix))
                if bias:
                    ih[d].bias.copy_(getattr(gru, "bias_ih" + suffix))
                    hh[d].bias.copy_(getattr(gru, "bias_hh" + suffix))
        self.ih = nn.ModuleList(ih)
        self.hh = nn.ModuleList(hh)

    def _direction(
        self, gates_in: torch.Tensor, hh: nn.Module, reverse: bool, h0: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        size = self.hidden_size
        steps = gates_in.shape[1]
        h = gates_in.new_zeros(gates_in.shape[0], size) if h0 is None else h0
        outputs: list[torch.Tensor] = [h] * steps
        for t in range(steps - 1, -1, -1) if reverse else range(steps):
            gi, gh = gates_in[:, t], hh(h)
            r = torch.sigmoid(gi[:, :size] + gh[:, :size])
            z = torch.sigmoid(gi[:, size : 2 * size] + gh[:, size : 2 * size])
            n = torch.tanh(gi[:, 2 * size :] + r * gh[:, 2 * size :])
            h = n + z * (h - n)  # = (1 − z)·n + z·h
            outputs[t] = h
        return torch.stack(outputs, dim=1), h

    def forward(
        self, x: torch.Tensor, h0: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # h0: (directions, N, hidden) as nn.GRU takes it (a forecaster's segment decoder
        # starts from the encoder's final state)
        seq = x if self.batch_first else x.transpose(0, 1)
        results = [
            self._direction(
                self.ih[d](seq), self.hh[d], reverse=d == 1, h0=None if h0 is None else h0[d]
            )
            for d in range(len(self.ih))
        ]
        out = torch.cat([r[0] for r in results], dim=-1)
        if not self.batch_first:
            out = out.transpose(0, 1)
        return out, torch.stack([r[1] for r in results], dim=0)


def has_gru(module: Any) -> bool:
    return any(isinstance(m, nn.GRU) for m in module.modules())


def unroll_grus(module: nn.Module) -> nn.Module:
    """A copy of `module` with every nn.GRU replaced by an UnrolledGRU (same outputs)."""
    import copy

    clone = copy.deepcopy(module).eval()
    for name, child in list(clone.named_modules()):
        if isinstance(child, nn.GRU):
            parent_name, _, attr = name.rpartition(".")
            parent = clone.get_submodule(parent_name) if parent_name else clone
            replacement = UnrolledGRU(child)
            if isinstance(parent, nn.ModuleList | nn.Sequential):
                parent[int(attr)] = replacement
            else:
                setattr(parent, attr, replacement)
    return clone
