"""Images: (C, H, W) pixels, normalized per channel; PNG/JPEG bodies on `/predict`.

Sources: scikit-learn's bundled digits, image folders (one sub-folder per class) and MNIST-style
IDX files. The graph takes the normalized float32 batch (N, C, H, W).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from scaledl.contract import ImageSpec
from scaledl.data.config import DataConfig
from scaledl.data.dataset import DataSplits, LoadedData
from scaledl.errors import DataError, PayloadTooLargeError, UnsupportedMediaTypeError
from scaledl.modalities.base import JSON_TYPES
from scaledl.modalities.normalized import NormalizedModality

IMAGE_TYPES = ("image/png", "image/jpeg", "image/jpg")
MAX_PIXELS = 40_000_000  # refuse decompression bombs long before Pillow's own limit


class ImageModality(NormalizedModality):
    kind: ClassVar[str] = "image"
    spec_type: ClassVar[type[ImageSpec]] = ImageSpec

    # ---- data ---------------------------------------------------------------------------
    def claims(self, path: Path, config: DataConfig) -> bool:
        from scaledl.data import idx

        return path.is_dir() or idx.looks_like_idx(path)

    def read(self, path: Path, config: DataConfig, task: str) -> LoadedData:
        from scaledl.data import idx, images

        if path.is_dir():
            if idx.find_idx_pairs(path):
                return idx.read_idx_folder(path, config, task)
            return images.read_image_folder(path, config, task)
        return idx.read_idx_file(path, config, task)

    # ---- preprocessing ------------------------------------------------------------------
    def extra_spec(self, splits: DataSplits) -> dict[str, Any]:
        c, h, w = splits.train.x.shape[1:]
        max_value = splits.max_value if splits.max_value is not None else round(1.0 / splits.scale)
        return {
            "image": {"height": int(h), "width": int(w), "channels": int(c), "max_value": max_value}
        }

    def channel_axis(self) -> int:
        return 1

    # ---- serving ------------------------------------------------------------------------
    def decode_predict(self, spec: ImageSpec, body: bytes, content_type: str) -> np.ndarray:
        if content_type in IMAGE_TYPES:
            return decode_image(body, spec)
        if content_type in JSON_TYPES:
            return super().decode_predict(spec, body, content_type)
        raise UnsupportedMediaTypeError(
            f"Content-Type {content_type!r} is not accepted by /predict; send image/png, "
            "image/jpeg, or application/json raw rows"
        )

    def predict_types_hint(self) -> str:
        return ", image/png or image/jpeg"


def decode_image(body: bytes, spec: ImageSpec) -> np.ndarray:
    """A PNG/JPEG → one raw row: the model's channels, resized to its size, in its pixel range."""
    from PIL import Image, UnidentifiedImageError

    geometry = spec.image
    try:
        image: Image.Image = Image.open(io.BytesIO(body))
        if image.width * image.height > MAX_PIXELS:
            raise PayloadTooLargeError(
                f"image of {image.width}×{image.height} pixels is too large "
                f"(at most {MAX_PIXELS:,} pixels)"
            )
        image = image.convert("L" if geometry.channels == 1 else "RGB")
        if image.size != (geometry.width, geometry.height):
            image = image.resize((geometry.width, geometry.height), Image.Resampling.BILINEAR)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise DataError("the body is not a readable PNG or JPEG image") from None
    pixels = np.asarray(image, dtype=np.float32)
    pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    if pixels.shape[0] != geometry.channels:
        raise DataError(
            f"the image has {pixels.shape[0]} channels; the model reads {geometry.channels}"
        )
    return (pixels * (geometry.max_value / 255.0))[None]
