"""Raw arrays → normalized tensors, and PyTorch-side evaluation."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from scaledl.preprocess import channel_axis


class Normalizer:
    """Applies the package preprocessing to torch batches: raw → ×scale → (x − mean) / std.

    Split in two so augmentation runs in between, on values in [0, 1] scale.
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        self.scale = float(spec["scale"])
        axis = channel_axis(spec["kind"])
        ndim = len(spec["raw_shape"]) + 1
        shape = [1] * ndim
        shape[axis] = -1
        self.mean = torch.tensor(spec["mean"], dtype=torch.float32).reshape(shape)
        self.std = torch.tensor(spec["std"], dtype=torch.float32).reshape(shape)
        self.device = torch.device("cpu")

    def to(self, device: torch.device | str) -> Normalizer:
        """Produce batches on `device` (scaling happens on the CPU, the rest there)."""
        self.device = torch.device(device)
        self.mean, self.std = self.mean.to(self.device), self.std.to(self.device)
        return self

    def scaled(self, x: np.ndarray) -> torch.Tensor:
        # Out of place: for float32 input, from_numpy/.to share the caller's memory, and an
        # in-place multiply would rescale the caller's array (e.g. the validation split) again
        # on every pass.
        t = torch.from_numpy(np.ascontiguousarray(x)).to(torch.float32).mul(self.scale)
        return t if self.device.type == "cpu" else t.to(self.device, non_blocking=True)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def __call__(self, x: np.ndarray) -> torch.Tensor:
        return self.normalize(self.scaled(x))


def loss_fn(task: str, label_smoothing: float = 0.0) -> Any:
    if task == "regression":
        return lambda out, y: torch.nn.functional.mse_loss(out.squeeze(-1), y)
    return lambda out, y: torch.nn.functional.cross_entropy(out, y, label_smoothing=label_smoothing)


def soft_target_loss(out: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against soft targets (MixUp/CutMix)."""
    return -(soft * torch.log_softmax(out, dim=1)).sum(dim=1).mean()


@torch.no_grad()
def predict_torch(
    model: torch.nn.Module, x: np.ndarray, normalizer: Normalizer, batch_size: int = 512
) -> np.ndarray:
    model.eval()
    outs = [model(normalizer(x[i : i + batch_size])) for i in range(0, len(x), batch_size)]
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
