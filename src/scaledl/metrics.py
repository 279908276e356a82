"""Task metrics from a model's raw outputs (numpy only: used by training, evaluation, optimize)."""

from __future__ import annotations

import numpy as np


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
