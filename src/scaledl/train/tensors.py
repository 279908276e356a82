"""Losses and PyTorch-side evaluation of raw arrays (through the modality's batch transform)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from scaledl.modalities import BatchTransform


def loss_fn(task: str, label_smoothing: float = 0.0) -> Any:
    if task == "regression":
        return lambda out, y: torch.nn.functional.mse_loss(out.squeeze(-1), y)
    return lambda out, y: torch.nn.functional.cross_entropy(out, y, label_smoothing=label_smoothing)


def soft_target_loss(out: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against soft targets (MixUp/CutMix)."""
    return -(soft * torch.log_softmax(out, dim=1)).sum(dim=1).mean()


@torch.no_grad()
def predict_torch(
    model: torch.nn.Module, x: np.ndarray, transform: BatchTransform, batch_size: int = 512
) -> np.ndarray:
    model.eval()
    outs = [model(transform(x[i : i + batch_size])) for i in range(0, len(x), batch_size)]
    return torch.cat(outs).numpy()
