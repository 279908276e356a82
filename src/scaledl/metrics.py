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
    return {"loss": loss, **classification_metrics(np.exp(log_probs), y)}


def classification_metrics(
    probs: np.ndarray, y: np.ndarray, threshold: float | None = None, positive: int = 1
) -> dict[str, float]:
    """Accuracy, precision, recall and F1 (of the positive class for two classes, macro-averaged
    otherwise) and, for two classes, PR-AUC (average precision: threshold-free). With a
    `threshold`, a two-class model predicts `positive` when its probability is ≥ threshold."""
    y = np.asarray(y, np.int64)
    classes = probs.shape[1]
    predicted = probs.argmax(axis=1)
    if threshold is not None and classes == 2:
        predicted = np.where(probs[:, positive] >= threshold, positive, 1 - positive)
    out = {"accuracy": float((predicted == y).mean()) if len(y) else 0.0}
    if classes == 2:
        p, r, f = _prf(predicted == positive, y == positive)
        out.update(precision=p, recall=r, f1=f)
        out["pr_auc"] = average_precision(probs[:, positive], y == positive)
    else:
        scores = [_prf(predicted == c, y == c) for c in range(classes) if (y == c).any()]
        if scores:
            out.update({k: float(np.mean([s[i] for s in scores])) for i, k in enumerate(MACRO)})
    return out


MACRO = ("precision_macro", "recall_macro", "f1_macro")


def _prf(predicted: np.ndarray, actual: np.ndarray) -> tuple[float, float, float]:
    tp = float((predicted & actual).sum())
    precision = tp / max(float(predicted.sum()), 1.0)
    recall = tp / max(float(actual.sum()), 1.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1


def average_precision(scores: np.ndarray, actual: np.ndarray) -> float:
    """Area under the precision-recall curve as scikit-learn's average_precision_score: Σ over
    distinct score thresholds of (recall step) × precision."""
    actual = np.asarray(actual, bool)
    positives = int(actual.sum())
    if positives == 0:
        return 0.0
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    sorted_scores, hits = np.asarray(scores)[order], actual[order]
    tp = np.cumsum(hits)
    last = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(hits) - 1]  # end of each tie group
    precision = tp[last] / (last + 1)
    recall = tp[last] / positives
    steps = np.diff(np.r_[0.0, recall])
    return float((steps * precision).sum())


def best_f1_threshold(scores: np.ndarray, actual: np.ndarray) -> float:
    """The probability threshold that maximises F1 on these rows (ties: the highest)."""
    actual = np.asarray(actual, bool)
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    sorted_scores, hits = np.asarray(scores, np.float64)[order], actual[order]
    tp = np.cumsum(hits)
    last = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(hits) - 1]
    precision = tp[last] / (last + 1)
    recall = tp[last] / max(int(actual.sum()), 1)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall + 1e-300), 0)
    return float(sorted_scores[last[int(np.argmax(f1))]])


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


def softmax(outputs: np.ndarray) -> np.ndarray:
    logits = np.asarray(outputs, np.float64)
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return np.asarray(z / z.sum(axis=1, keepdims=True))


def choose_decision(
    setting: str | float, probs: np.ndarray, y: np.ndarray, labels: list[str]
) -> dict[str, object] | None:
    """A binary classifier's decision rule from validation probabilities: the threshold on the
    positive (second) class, by `setting` (argmax: none; max_f1; or a fixed number)."""
    if setting == "argmax" or len(labels) != 2:
        return None
    if isinstance(setting, int | float):
        threshold, how = float(setting), "fixed in the recipe"
    else:
        threshold = best_f1_threshold(probs[:, 1], np.asarray(y) == 1)
        how = f"max F1 on the validation split ({len(y)} rows)"
    return {"positive_label": labels[1], "threshold": threshold, "chosen_by": how}


def apply_decision(
    outputs: np.ndarray, y: np.ndarray, decision: dict[str, object]
) -> tuple[np.ndarray, dict[str, float]]:
    """Predictions and metrics under a binary decision rule (argmax accuracy kept beside)."""
    probs = softmax(outputs)
    threshold = float(decision["threshold"])  # type: ignore[arg-type]
    at = classification_metrics(probs, y, threshold=threshold)
    at["accuracy_argmax"] = float((np.asarray(outputs).argmax(axis=1) == y).mean())
    at["threshold"] = threshold
    return np.where(probs[:, 1] >= threshold, 1, 0), at
