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


def evaluate_outputs(outputs: np.ndarray, y: np.ndarray, task: str) -> dict[str, float]:
    """Loss and accuracy (classification) or RMSE/MAE/R² (regression) from raw outputs."""
    if task == "regression":
        pred = outputs.reshape(len(outputs), -1)[:, 0].astype(np.float64)
        err = pred - y
        var = float(np.var(y)) or 1.0
        return {
            "loss": float(np.mean(err**2)),
            "rmse": float(np.sqrt(np.mean(err**2))),
            "mae": float(np.mean(np.abs(err))),
            "r2": float(1.0 - np.mean(err**2) / var),
        }
    logits = outputs.astype(np.float64)
    logits = logits - logits.max(axis=1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    loss = float(-log_probs[np.arange(len(y)), y].mean())
    return {"loss": loss, "accuracy": float((outputs.argmax(axis=1) == y).mean())}
