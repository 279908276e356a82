"""Batch-norm recalibration: re-estimate running statistics after units are removed.

Removing channels changes what every later layer sees, so the running mean/variance of the
batch norms downstream no longer match their inputs and accuracy collapses before any
fine-tuning (digits CNN, 50% pruned: 20% → 73% test accuracy once recalibrated on 512 samples).
Only the statistics change; no weight is trained.
"""

from __future__ import annotations

import torch
from torch import nn


def has_batch_norm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


@torch.no_grad()
def recalibrate_batch_norm(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> None:
    """Replace every batch norm's running statistics with averages over `x` (in batches)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    model.eval()
    saved = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over all batches
        norm.train()
    try:
        for start in range(0, len(x), batch_size):
            chunk = x[start : start + batch_size]
            if len(chunk) > 1:  # batch statistics need two samples
                model(chunk)
    finally:
        for norm, momentum in zip(norms, saved, strict=True):
            norm.momentum = momentum
        model.eval()
