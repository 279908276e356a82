"""Images: (C, H, W) pixels, normalized per channel; PNG/JPEG bodies on `/predict`.

Sources: scikit-learn's bundled digits, image folders (one sub-folder per class) and MNIST-style
IDX files. The graph takes the normalized float32 batch (N, C, H, W).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from scaledl.contract import ImageSpec, SpecBase
from scaledl.data.config import DataConfig
from scaledl.data.dataset import DataSplits, LoadedData
from scaledl.errors import DataError, PayloadTooLargeError
from scaledl.modalities.base import BodyLimits
from scaledl.modalities.normalized import NormalizedModality

IMAGE_TYPES = ("image/png", "image/jpeg", "image/jpg")


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
    body_types: ClassVar[tuple[str, ...]] = IMAGE_TYPES

    def rows_from_body(
        self, spec: SpecBase, body: bytes, media_type: str, limits: BodyLimits
    ) -> np.ndarray:
        assert isinstance(spec, ImageSpec)
        return decode_image(body, spec, limits.max_pixels)


def decode_image(body: bytes, spec: ImageSpec, max_pixels: int) -> np.ndarray:
    """A PNG/JPEG → one raw row: the model's channels, resized to its size, in its pixel range.

    Slow for big images: the server runs it off its event loop.
    """
    from PIL import Image, UnidentifiedImageError

    geometry = spec.image
    channels, height, width = geometry.channels, geometry.height, geometry.width
    if channels not in (1, 3):
        raise DataError(f"the model reads {channels}-channel images; send JSON raw rows")
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
        raise DataError("the body is not a PNG or JPEG image") from None
    except PayloadTooLargeError:
        raise
    except Exception:  # decoders raise many types on hostile bytes; none is worth a 500
        raise DataError("the body is not a readable PNG or JPEG image (corrupt data)") from None
    pixels = np.asarray(image, dtype=np.float32)
    pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    return (pixels * (geometry.max_value / 255.0))[None]
