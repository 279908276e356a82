"""What the monitor keeps of a model's outputs: predicted class and a tie-free confidence score.

Graph outputs are logits for classifiers (probabilities are accepted too). Top-1 confidence
saturates at exactly 1.0 in float32 for confident models, which would create ties that make the
KS test lose power; the score `log((1 - p) / p)` computed from logits in float64 is a strictly
monotone function of the confidence (so a KS test on it is a KS test on confidence) that keeps
separating values long after `p` rounds to 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class OutputSummary:
    """Per-sample summaries of a batch of classifier outputs."""

    predicted: np.ndarray  # (N,) int64 class ids
    confidence: np.ndarray  # (N,) float64 top-1 probability
    score: np.ndarray  # (N,) float64 log((1 - p) / p), lower = more confident
    probabilities: np.ndarray  # (N, K) float64


def _looks_like_probabilities(outputs: np.ndarray) -> bool:
    if outputs.size == 0 or outputs.min() < 0.0 or outputs.max() > 1.0:
        return False
    return bool(np.allclose(outputs.sum(axis=1), 1.0, atol=1e-3))


def summarize_outputs(outputs: np.ndarray) -> OutputSummary:
    """Predicted class, confidence and confidence score for (N, K) logits or probabilities."""
    out = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    if out.shape[1] < 2:
        raise ValueError(f"classifier outputs need at least 2 columns, got shape {out.shape}")
    if _looks_like_probabilities(out):
        logits = np.log(np.clip(out, 1e-300, None))
    else:
        logits = out
    predicted = logits.argmax(axis=1)
    top = logits[np.arange(len(logits)), predicted]
    shifted = logits - top[:, None]
    # log Σ_{j≠top} exp(l_j − l_top), computed stably: the top entry contributes exp(0) = 1.
    others = shifted.copy()
    others[np.arange(len(others)), predicted] = -np.inf
    peak = others.max(axis=1)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    score = peak + np.log(np.exp(others - peak[:, None]).sum(axis=1))
    probabilities = np.exp(shifted)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    confidence = probabilities[np.arange(len(probabilities)), predicted]
    return OutputSummary(
        predicted=predicted.astype(np.int64),
        confidence=confidence,
        score=score,
        probabilities=probabilities,
    )


def class_counts(predicted: np.ndarray, num_classes: int) -> np.ndarray:
    return np.bincount(np.asarray(predicted, dtype=np.int64), minlength=num_classes)[:num_classes]
