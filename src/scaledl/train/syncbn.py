"""Batch normalization synchronized across ranks, on any device (gloo on CPU, NCCL on GPU).

torch's SyncBatchNorm runs only on GPUs. Here each BatchNorm module's forward is swapped (not its
class, so state_dict keys stay the same and the model exports as usual) for one that all-reduces
sum, sum of squares and count with an autograd-aware all_reduce: the statistics, and so the
training, are those of the global batch, whatever the number of processes.
"""

from __future__ import annotations

import types
from typing import Any

import torch
from torch import nn


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; the gradient of a sum over ranks is the sum of the gradients."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.clone()
        torch.distributed.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        out = grad.clone()
        torch.distributed.all_reduce(out)
        return out


def _sync_forward(self: nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
    if not self.training:
        return type(self).forward(self, x)
    dims = [0, *range(2, x.dim())]
    xf = x.float()
    count = torch.tensor([xf.numel() / xf.shape[1]], device=x.device, dtype=torch.float32)
    stats = _AllReduceSum.apply(torch.cat([xf.sum(dims), (xf * xf).sum(dims), count]))
    c = x.shape[1]
    n = stats[-1]
    mean = stats[:c] / n
    var = (stats[c : 2 * c] / n - mean * mean).clamp(min=0.0)
    if self.track_running_stats and self.running_mean is not None:
        with torch.no_grad():
            self.num_batches_tracked.add_(1)  # type: ignore[union-attr]
            factor = (
                self.momentum
                if self.momentum is not None
                else 1.0 / float(self.num_batches_tracked)  # type: ignore[arg-type]
            )
            unbiased = var * (n / (n - 1).clamp(min=1.0))
            self.running_mean.mul_(1 - factor).add_(mean.detach(), alpha=factor)
            self.running_var.mul_(1 - factor).add_(unbiased.detach(), alpha=factor)  # type: ignore[union-attr]
    shape = [1, c] + [1] * (x.dim() - 2)
    out = (xf - mean.reshape(shape)) * torch.rsqrt(var + self.eps).reshape(shape)
    if self.affine:
        out = out * self.weight.reshape(shape) + self.bias.reshape(shape)
    return out.to(x.dtype)


def sync_batchnorm(model: nn.Module) -> list[nn.Module]:
    """Synchronize every BatchNorm of `model`; returns the modules changed (for `unsync`)."""
    changed: list[nn.Module] = []
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.forward = types.MethodType(_sync_forward, module)  # type: ignore[method-assign]
            changed.append(module)
    return changed


def unsync_batchnorm(modules: list[Any]) -> None:
    for module in modules:
        module.__dict__.pop("forward", None)
