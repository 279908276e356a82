"""`POST /v2/models/{m}/predict`: for people, not tensors.

Input: an encoded image (`Content-Type: image/png` or `image/jpeg`) or JSON raw feature rows
(`[[…], …]` or `{"instances": [[…], …]}`), in the units the model was trained on (pixels
0–255 for images; for tables the raw column values). The model's modality decodes the body and
applies the package's own preprocessing (the same `to_graph` `scaledl evaluate` runs), so the
answer matches what evaluation measured. An image is converted to the model's channels and
resized to its height × width; its 0–255 pixels are mapped to the training range (e.g. 0–16
for scikit-learn digits).

Output: classifiers give `label`, `probability` and the `top` classes (softmax of the outputs,
unless they already are probabilities; a binary classifier with a decision threshold in its
package labels a row positive when that class's probability reaches the threshold);
regressors give `value`, forecasters a `forecast` per target in original units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from scaledl.contract import SpecBase
from scaledl.errors import PayloadTooLargeError
from scaledl.modalities import BodyLimits, modality_of
from scaledl.serve.codec import BadRequest, UnsupportedMediaTypeError, parse_json, to_array
from scaledl.serve.model import ModelVersion


@dataclass(frozen=True)
class Limits:
    """Size limits of a /predict body (from the server settings)."""

    max_json_bytes: int = 2 << 20
    max_pixels: int = 16_000_000  # refuse decompression bombs long before Pillow's limit


def media_type(content_type: str | None) -> str:
    return (content_type or "application/json").split(";", 1)[0].strip().lower()


def is_body(content_type: str | None) -> bool:
    """A body the modality decodes itself (an image, a sound file): slow, run it off the loop."""
    return media_type(content_type) != "application/json"


def is_json(content_type: str | None) -> bool:
    return media_type(content_type) == "application/json"


def parse_rows(body: bytes, limits: Limits) -> np.ndarray | list[Any]:
    """JSON raw rows (`[[…], …]`, `{"instances": […]}` or `{"rows": […]}`) as a float64 array,
    shape (N, …), or the list itself when it holds more than numbers (e.g. named rows).

    Version-independent, so a big body is parsed once, in a parser process.
    """
    if len(body) > limits.max_json_bytes:
        raise PayloadTooLargeError(
            f"JSON body of {len(body)} bytes exceeds the {limits.max_json_bytes}-byte limit "
            "(--max-json-mb); send fewer rows per request"
        )
    doc = parse_json(body)
    # {"rows": […]}: named observations (a forecaster's look-back), read by the modality alike
    rows = doc.get("instances", doc.get("rows")) if isinstance(doc, dict) else doc
    if not isinstance(rows, list) or not rows:
        raise BadRequest(
            'send a JSON list of raw rows, {"instances": [row, …]} or {"rows": [row, …]}'
        )
    if isinstance(rows[0], str):  # texts: numpy would read "12" as a number
        return rows
    try:
        return to_array(rows, np.float64)
    except (ValueError, TypeError, OverflowError):
        return rows  # not numbers (e.g. texts): the model's modality reads them


def raw_rows(
    body: bytes,
    content_type: str | None,
    spec: SpecBase,
    limits: Limits | None = None,
    parsed: Any = None,
) -> np.ndarray:
    """The request as raw samples of shape (N, *raw_shape), decoded by the model's modality
    (`parsed`: the JSON rows already parsed by `parse_rows`)."""
    limits = limits or Limits()
    base = media_type(content_type)
    unit = modality_of(spec)
    if base in unit.body_types:
        return unit.rows_from_body(spec, body, base, BodyLimits(max_pixels=limits.max_pixels))
    if base != "application/json":
        accepted = ", ".join(("application/json raw rows", *unit.body_types))
        raise UnsupportedMediaTypeError(
            f"Content-Type {base!r} is not accepted by /predict for this model; send {accepted}"
        )
    rows = parsed if parsed is not None else parse_rows(body, limits)
    return unit.rows_from_json(spec, rows)


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
        spec = mv.manifest.preprocessing
        if spec is not None:  # the modality's own answer (e.g. a forecast per target)
            return modality_of(spec).format_values(spec, output)
        return [{"value": row.tolist()} for row in output.reshape(len(output), -1)]
    probs = _probabilities(output.astype(np.float64))
    labels = mv.package.labels or [str(i) for i in range(probs.shape[1])]
    k = max(1, min(top, probs.shape[1]))
    decision = mv.manifest.decision
    out = []
    for row in probs:
        order = np.argsort(-row)[:k]
        ranked = [{"label": labels[i], "probability": float(row[i])} for i in order]
        answer = {**ranked[0], "top": ranked}
        if decision is not None and len(labels) == 2:  # the package's threshold decides
            positive = labels.index(decision.positive_label)
            chosen = positive if row[positive] >= decision.threshold else 1 - positive
            answer.update(label=labels[chosen], probability=float(row[chosen]))
            answer["threshold"] = decision.threshold
        out.append(answer)
    return out


def _probabilities(x: np.ndarray) -> np.ndarray:
    sums = x.sum(axis=1)
    if (x >= 0).all() and (x <= 1).all() and np.allclose(sums, 1.0, atol=1e-3):
        return x
    z = np.exp(x - x.max(axis=1, keepdims=True))
    return np.asarray(z / z.sum(axis=1, keepdims=True))
