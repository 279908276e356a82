"""Unstructured magnitude pruning: zero the smallest weights, same shapes, for size only.

Zeros do not make dense ONNX Runtime kernels faster; what they buy is a smaller compressed
artifact. The returned statistics say exactly that: the sparsity reached and the deflate size
of the weights before and after, not a speed-up.
"""

from __future__ import annotations

import copy
import zlib

import numpy as np
import torch
from torch import nn

from scaledl.errors import UsageError

PRUNABLE = (nn.Conv2d, nn.Conv1d, nn.Linear, nn.RNNBase)


def prunable_weights(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """Weight matrices of conv, linear and recurrent layers (biases and norms stay dense)."""
    found = []
    for name, module in model.named_modules():
        if isinstance(module, PRUNABLE):
            for pname, param in module.named_parameters(recurse=False):
                if pname.startswith("weight") and param.ndim >= 2:
                    found.append((f"{name}.{pname}" if name else pname, param))
    return found


def _deflate_size(model: nn.Module) -> int:
    blob = b"".join(
        np.ascontiguousarray(p.detach().cpu().numpy(), dtype=np.float32).tobytes()
        for p in model.parameters()
    )
    return len(zlib.compress(blob, 6))


def prune_unstructured(model: nn.Module, sparsity: float) -> tuple[nn.Module, dict[str, float]]:
    """A copy of `model` whose smallest-magnitude weights (global ranking) are zero.

    Returns (model, stats): stats holds `sparsity` (zeros among prunable weights),
    `overall_sparsity` (zeros among all parameters), `params`, `zeros`, and
    `deflate_bytes_before`/`after` (the weights compressed with zlib level 6, what a zipped
    package would shrink to).
    """
    if not 0.0 <= sparsity < 1.0:
        raise UsageError(f"sparsity {sparsity}: valid values are 0 ≤ sparsity < 1")
    pruned = copy.deepcopy(model).eval()
    weights = prunable_weights(pruned)
    if not weights:
        raise UsageError("unstructured pruning found no conv, linear or recurrent weights")
    before = _deflate_size(pruned)
    magnitudes = torch.cat([p.detach().abs().reshape(-1) for _, p in weights])
    count = int(sparsity * len(magnitudes))
    if count:
        threshold = torch.kthvalue(magnitudes, count).values
        with torch.no_grad():
            for _, param in weights:
                param.masked_fill_(param.abs() <= threshold, 0.0)
    prunable = len(magnitudes)
    zeros = sum(int((p == 0).sum()) for _, p in weights)
    params = sum(p.numel() for p in pruned.parameters())
    all_zeros = sum(int((p == 0).sum()) for p in pruned.parameters())
    stats = {
        "sparsity": zeros / prunable,
        "overall_sparsity": all_zeros / params,
        "params": float(params),
        "zeros": float(all_zeros),
        "deflate_bytes_before": float(before),
        "deflate_bytes_after": float(_deflate_size(pruned)),
    }
    return pruned, stats
