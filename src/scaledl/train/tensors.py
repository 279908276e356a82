"""Losses and PyTorch-side evaluation of raw arrays (through the modality's batch transform)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from scaledl.modalities import BatchTransform


def loss_fn(
    task: str,
    label_smoothing: float = 0.0,
    error_scale: np.ndarray | None = None,
    class_weights: np.ndarray | None = None,
    regression_loss: str = "auto",
    huber_delta: float = 1.0,
) -> Any:
    """The training loss. Regression: MSE (or `regression_loss`: mae, huber), on the
    standardised scale when the modality gives an `error_scale` (each target's training std),
    for outputs of any shape matching y's. Classification: cross-entropy, weighted per class
    when `class_weights` is given."""
    if task == "regression":
        pointwise = _regression_loss(regression_loss, huber_delta)
        if error_scale is None:
            return lambda out, y: pointwise(_like(out, y), y)
        inverse = torch.tensor(1.0 / np.asarray(error_scale, np.float64), dtype=torch.float32)

        def scaled(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            inv = inverse.to(y.device)
            return pointwise(_like(out, y) * inv, y * inv)

        return scaled
    if regression_loss not in ("auto", "mse"):
        from scaledl.errors import RecipeError

        raise RecipeError(
            f"train.loss is {regression_loss!r}, a regression loss; this is a classifier, which "
            "trains on cross-entropy: leave train.loss at auto"
        )
    weight = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)

    def cross_entropy(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        w = None if weight is None else weight.to(out.device)
        return torch.nn.functional.cross_entropy(out, y, weight=w, label_smoothing=label_smoothing)

    return cross_entropy


def _regression_loss(name: str, huber_delta: float) -> Any:
    if name == "mae":
        return torch.nn.functional.l1_loss
    if name == "huber":
        return lambda out, y: torch.nn.functional.huber_loss(out, y, delta=huber_delta)
    return torch.nn.functional.mse_loss


def class_weights(setting: Any, splits: Any) -> np.ndarray | None:
    """Per-class loss weights: none, balanced (n / (classes · count), as scikit-learn's), or
    the recipe's list (one per class)."""
    classes = splits.num_classes or 0
    if setting == "none" or not classes:
        return None
    if isinstance(setting, list):
        if len(setting) != classes or min(setting) <= 0:
            from scaledl.errors import RecipeError

            raise RecipeError(
                f"train.class_weights lists {len(setting)} weight(s); the data has {classes} "
                "classes and every weight must be > 0"
            )
        return np.asarray(setting, np.float64)
    counts = np.bincount(np.asarray(splits.train.y, np.int64), minlength=classes).astype(float)
    return np.asarray(len(splits.train.y) / (classes * np.maximum(counts, 1.0)))


def _like(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Outputs shaped as the targets: (N, 1) → (N,) for one value, (N, H, T) as they are."""
    return out.reshape(y.shape) if out.numel() == y.numel() else out.squeeze(-1)


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
