"""`POST /v2/models/{m}/predict`: for people, not tensors.

Input: an encoded image (`Content-Type: image/png` or `image/jpeg`) or JSON raw feature rows
(`[[…], …]` or `{"instances": [[…], …]}`), in the units the model was trained on (pixels
0–255 for images; for tables the raw column values). The model's modality decodes the body and
applies the package's own preprocessing (the same `to_graph` `scaledl evaluate` runs), so the
answer matches what evaluation measured. An image is converted to the model's channels and
resized to its height × width; its 0–255 pixels are mapped to the training range (e.g. 0–16
for scikit-learn digits).

Output: classifiers give `label`, `probability` and the `top` classes (softmax of the outputs,
unless they already are probabilities); regressors give `value`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scaledl.contract import SpecBase
from scaledl.modalities import modality_of
from scaledl.serve.codec import BadRequest
from scaledl.serve.model import ModelVersion


def raw_rows(body: bytes, content_type: str | None, spec: SpecBase) -> np.ndarray:
    """The request as raw samples of shape (N, *raw_shape), decoded by the model's modality."""
    base = (content_type or "application/json").split(";", 1)[0].strip().lower()
    return modality_of(spec).decode_predict(spec, body, base)


def graph_inputs(mv: ModelVersion, raw: np.ndarray) -> dict[str, np.ndarray]:
    spec = preprocessing_of(mv)
    if len(mv.signature.inputs) != 1:
        raise BadRequest("/predict serves single-input models; use /infer for this one")
    if mv.adapter is not None:  # the batch runner converts them (text: tokenizes, off the loop)
        return mv.adapter.served(raw)
    return {mv.signature.inputs[0].name: modality_of(spec).to_graph(spec, raw)}


def preprocessing_of(mv: ModelVersion) -> SpecBase:
    spec = mv.manifest.preprocessing
    if spec is None:
        raise BadRequest(
            f"model {mv.label} has no preprocessing in its manifest; use /infer with tensors"
        )
    return spec


def predictions(mv: ModelVersion, output: np.ndarray, top: int) -> list[dict[str, Any]]:
    task = mv.manifest.task
    if task != "classification" or output.ndim != 2:
        return [{"value": row.tolist()} for row in output.reshape(len(output), -1)]
    probs = _probabilities(output.astype(np.float64))
    labels = mv.package.labels or [str(i) for i in range(probs.shape[1])]
    k = max(1, min(top, probs.shape[1]))
    out = []
    for row in probs:
        order = np.argsort(-row)[:k]
        ranked = [{"label": labels[i], "probability": float(row[i])} for i in order]
        out.append({**ranked[0], "top": ranked})
    return out


def _probabilities(x: np.ndarray) -> np.ndarray:
    sums = x.sum(axis=1)
    if (x >= 0).all() and (x <= 1).all() and np.allclose(sums, 1.0, atol=1e-3):
        return x
    z = np.exp(x - x.max(axis=1, keepdims=True))
    return np.asarray(z / z.sum(axis=1, keepdims=True))
