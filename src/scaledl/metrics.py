"""Task metrics from a model's raw outputs (numpy only: used by training, evaluation, optimize)."""

from __future__ import annotations

import numpy as np


def evaluate_outputs(
    outputs: np.ndarray, y: np.ndarray, task: str, error_scale: np.ndarray | None = None
) -> dict[str, float]:
    """Loss and accuracy (classification) or errors (regression) from raw outputs.

    Regression: MSE, RMSE, MAE and R² in the targets' own units; with `error_scale` (the
    training standard deviation of each target, broadcast over the last axis) also MSE and MAE
    on that standardised scale, which is then the `loss` (what training minimises, and what the
    forecasting literature reports). `y` may be (N,) or (N, ...) — a multi-step forecast.
    """
    if task == "regression":
        return regression_errors(outputs, y, error_scale)
    logits = outputs.astype(np.float64)
    logits = logits - logits.max(axis=1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    loss = float(-log_probs[np.arange(len(y)), y].mean())
    return {"loss": loss, "accuracy": float((outputs.argmax(axis=1) == y).mean())}


def regression_errors(
    outputs: np.ndarray, y: np.ndarray, error_scale: np.ndarray | None = None
) -> dict[str, float]:
    y64 = np.asarray(y, dtype=np.float64)
    out = np.asarray(outputs)
    pred = out.reshape(y64.shape) if out.size == y64.size else out.reshape(len(out), -1)[:, 0]
    err = pred.astype(np.float64) - y64
    mse = float(np.mean(err**2)) if err.size else 0.0
    columns = y64.reshape(-1, y64.shape[-1]) if y64.ndim > 1 else y64[:, None]
    col_err = err.reshape(columns.shape)
    var = columns.var(axis=0)
    var = np.where(var > 0, var, 1.0)
    r2 = float(1.0 - np.mean(np.mean(col_err**2, axis=0) / var)) if err.size else 0.0
    metrics = {
        "loss": mse,
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mae": float(np.mean(np.abs(err))) if err.size else 0.0,
        "r2": r2,
    }
    if error_scale is not None:
        z = err / np.asarray(error_scale, dtype=np.float64)
        metrics["mse_standardized"] = float(np.mean(z**2)) if z.size else 0.0
        metrics["mae_standardized"] = float(np.mean(np.abs(z))) if z.size else 0.0
        metrics["loss"] = metrics["mse_standardized"]
    return metrics


def task_error(metrics: dict[str, float]) -> float:
    """The error a regression budget applies to: MSE on the standardised scale when the model
    has one (forecasts), else MSE in the target's units (lower is better)."""
    for key in ("mse_standardized", "mse", "loss"):
        if key in metrics:
            return float(metrics[key])
    raise KeyError("regression metrics need mse_standardized, mse or loss")
