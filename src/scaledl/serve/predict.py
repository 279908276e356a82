"""`POST /v2/models/{m}/predict`: for people, not tensors.

Input: an encoded image (`Content-Type: image/png` or `image/jpeg`) or JSON raw feature rows
(`[[…], …]` or `{"instances": [[…], …]}`), in the units the model was trained on (pixels
0–255 for images; for tables the raw column values). The package's own preprocessing
(`scaledl.preprocess.apply_preprocessing`) turns them into the graph input, so the answer
matches what `scaledl evaluate` measured. An image is converted to the model's channels and
resized to its height × width; its 0–255 pixels are mapped to the training range (e.g. 0–16
for scikit-learn digits).

Output: classifiers give `label`, `probability` and the `top` classes (softmax of the outputs,
unless they already are probabilities); regressors give `value`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from scaledl.errors import PayloadTooLargeError
from scaledl.preprocess import apply_preprocessing
from scaledl.serve.codec import BadRequest, UnsupportedMediaTypeError, parse_json, to_array
from scaledl.serve.model import ModelVersion

IMAGE_TYPES = ("image/png", "image/jpeg", "image/jpg")


@dataclass(frozen=True)
class Limits:
    """Size limits of a /predict body (from the server settings)."""

    max_json_bytes: int = 2 << 20
    max_pixels: int = 16_000_000  # refuse decompression bombs long before Pillow's limit


def media_type(content_type: str | None) -> str:
    return (content_type or "application/json").split(";", 1)[0].strip().lower()


def is_image(content_type: str | None) -> bool:
    return media_type(content_type) in IMAGE_TYPES


def is_json(content_type: str | None) -> bool:
    return media_type(content_type) == "application/json"


def parse_rows(body: bytes, limits: Limits) -> np.ndarray:
    """JSON raw rows (`[[…], …]` or `{"instances": […]}`) as a float64 array, shape (N, …).

    Version-independent, so a big body is parsed once, in a parser process.
    """
    if len(body) > limits.max_json_bytes:
        raise PayloadTooLargeError(
            f"JSON body of {len(body)} bytes exceeds the {limits.max_json_bytes}-byte limit "
            "(--max-json-mb); send fewer rows per request"
        )
    doc = parse_json(body)
    rows = doc.get("instances") if isinstance(doc, dict) else doc
    if not isinstance(rows, list) or not rows:
        raise BadRequest('send a JSON list of raw rows, or {"instances": [row, …]}')
    try:
        return to_array(rows, np.float64)
    except (ValueError, TypeError):
        raise BadRequest("rows must be lists of numbers of the same length") from None


def raw_rows(
    body: bytes,
    content_type: str | None,
    spec: dict[str, Any],
    limits: Limits | None = None,
    parsed: np.ndarray | None = None,
) -> np.ndarray:
    """The request as raw samples of shape (N, *raw_shape), float32 (`parsed`: the JSON rows
    already parsed by `parse_rows`)."""
    limits = limits or Limits()
    base = media_type(content_type)
    if base in IMAGE_TYPES:
        return _image_rows(body, spec, limits.max_pixels)
    if base != "application/json":
        raise UnsupportedMediaTypeError(
            f"Content-Type {base!r} is not accepted by /predict; send image/png, image/jpeg, "
            "or application/json raw rows"
        )
    array = parsed if parsed is not None else parse_rows(body, limits)
    raw_shape = tuple(int(d) for d in spec["raw_shape"])
    per_row = int(np.prod(raw_shape))
    if array.ndim < 1 or array.size != len(array) * per_row:
        raise BadRequest(
            f"each row must hold {per_row} numbers (raw shape {list(raw_shape)}); "
            f"got {array.size} number(s) for {len(array)} row(s)"
        )
    array = array.reshape(len(array), *raw_shape).astype(np.float32)
    if not np.isfinite(array).all():
        raise BadRequest("rows contain NaN or Inf values")
    return array


def _image_rows(body: bytes, spec: dict[str, Any], max_pixels: int) -> np.ndarray:
    """Decode, convert and resize one image (slow for big images: run it off the loop)."""
    from PIL import Image, UnidentifiedImageError

    image_spec = spec.get("image")
    if spec.get("kind") != "image" or not image_spec:
        raise UnsupportedMediaTypeError("this model does not take images; send JSON raw rows")
    channels, height, width = (int(image_spec[k]) for k in ("channels", "height", "width"))
    try:
        image: Image.Image = Image.open(io.BytesIO(body))
        if image.width * image.height > max_pixels:
            raise PayloadTooLargeError(
                f"image of {image.width}×{image.height} pixels is larger than the "
                f"{max_pixels}-pixel limit (--max-image-pixels)"
            )
        if image.format == "JPEG":  # decode at a reduced scale when the model is smaller
            image.draft("L" if channels == 1 else "RGB", (width, height))
        image = image.convert("L" if channels == 1 else "RGB")
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=3.0)
    except UnidentifiedImageError:
        raise BadRequest("the body is not a PNG or JPEG image") from None
    except PayloadTooLargeError:
        raise
    except Exception:  # decoders raise many types on hostile bytes; none is worth a 500
        raise BadRequest("the body is not a readable PNG or JPEG image (corrupt data)") from None
    pixels = np.asarray(image, dtype=np.float32)
    pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    scale = float(image_spec.get("max_value", 255.0)) / 255.0
    return (pixels * scale)[None]


def graph_inputs(mv: ModelVersion, raw: np.ndarray) -> dict[str, np.ndarray]:
    spec = mv.manifest.get("preprocessing")
    if len(mv.signature.inputs) != 1:
        raise BadRequest("/predict serves single-input models; use /infer for this one")
    x = apply_preprocessing(raw, spec) if spec else raw.astype(np.float32)
    return {mv.signature.inputs[0].name: x}


def preprocessing_of(mv: ModelVersion) -> dict[str, Any]:
    spec = mv.manifest.get("preprocessing")
    if not isinstance(spec, dict) or "raw_shape" not in spec:
        raise BadRequest(
            f"model {mv.label} has no preprocessing in its manifest; use /infer with tensors"
        )
    return spec


def predictions(mv: ModelVersion, output: np.ndarray, top: int) -> list[dict[str, Any]]:
    task = mv.manifest.get("task", "classification")
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
