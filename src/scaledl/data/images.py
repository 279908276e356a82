"""Image folders (one sub-folder per class), decoded once and cached as uint8 arrays."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from scaledl.config.data import DataConfig
from scaledl.data.dataset import ArraySet, LoadedData, fingerprint_arrays
from scaledl.data.folder_cache import limit_per_class, listing_key, read_cache, write_cache
from scaledl.errors import DataError
from scaledl.ui import progress

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
CACHE_VERSION = "1"


def default_cache_dir() -> Path:
    env = os.environ.get("SCALEDL_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "scaledl"


def read_image_folder(root: Path, config: DataConfig, task: str) -> LoadedData:
    if task != "classification":
        raise DataError(f"image folder {root} is for classification; got task {task!r}")
    splits = _layout(root)
    classes = sorted({p.parent.name for files in splits.values() for p in files})
    per_class = config.limit_per_class
    listing = {name: limit_per_class(files, per_class) for name, files in splits.items()}
    key = listing_key(f"v{CACHE_VERSION}|{config.image_size}|{config.color}", root, listing)
    cache_dir = Path(config.cache_dir).expanduser() if config.cache_dir else default_cache_dir()
    cache_file = cache_dir / f"images-{key}.npz"
    arrays = read_cache(cache_file, "image")
    if arrays is None:
        arrays = _decode_all(listing, classes, config)
        write_cache(cache_file, arrays, "image")
    else:
        log.info("image folder %s: read decoded cache %s", root, cache_file)
    data = ArraySet(arrays["x_train"], arrays["y_train"])
    test = ArraySet(arrays["x_test"], arrays["y_test"]) if "x_test" in arrays else None
    return LoadedData(
        data=data,
        test=test,
        kind="image",
        labels=classes,
        scale=1.0 / 255.0,
        max_value=255.0,
        fingerprint=str(arrays["fingerprint"]),
        source=str(root),
    )


def _layout(root: Path) -> dict[str, list[Path]]:
    """{'train': files, 'test': files} or {'all': files}; each file's parent is its class."""
    named = {n: root / n for n in ("train", "test") if (root / n).is_dir()}
    if "train" in named:
        splits = {n: _class_files(d) for n, d in named.items()}
    else:
        splits = {"all": _class_files(root)}
    for name, files in splits.items():
        if not files:
            raise DataError(
                f"image folder {root}: no images in {name!r}; expected one sub-folder per class "
                f"holding {', '.join(sorted(IMAGE_SUFFIXES))} files"
            )
    if "test" in splits:
        unknown = {p.parent.name for p in splits["test"]} - {p.parent.name for p in splits["train"]}
        if unknown:
            raise DataError(
                f"image folder {root}: test classes {sorted(unknown)} are not in train/"
            )
    return splits


def _class_files(folder: Path) -> list[Path]:
    """Every image, class folder by class folder. A class folder without images is an error
    (silently dropping it would train a model with one class fewer than the folders say);
    hidden folders (`.ipynb_checkpoints`, `.git`) are not classes and are skipped."""
    files: list[Path] = []
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        if class_dir.name.startswith("."):
            log.info("image folder %s: skipping hidden folder %s", folder, class_dir.name)
            continue
        images = sorted(
            p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        )
        if not images:
            raise DataError(
                f"image folder {folder}: class folder {class_dir.name!r} holds no images "
                f"({', '.join(sorted(IMAGE_SUFFIXES))}); add its images or remove the folder"
            )
        files.extend(images)
    return files


def _decode_all(
    listing: dict[str, list[Path]], classes: list[str], config: DataConfig
) -> dict[str, np.ndarray]:
    mode = _color_mode(listing, config)
    size = _target_size(listing, config)
    resize = config.image_size is not None
    class_id = {c: i for i, c in enumerate(classes)}
    out: dict[str, np.ndarray] = {}
    total = sum(len(f) for f in listing.values())
    with progress("decoding images", total) as bar, ThreadPoolExecutor(max_workers=4) as pool:
        for name, files in listing.items():
            x = np.empty((len(files), 3 if mode == "RGB" else 1, size[0], size[1]), np.uint8)
            for i, arr in enumerate(pool.map(lambda p: _decode(p, mode, size, resize), files)):
                x[i] = arr
                bar.advance()
            y = np.array([class_id[p.parent.name] for p in files], dtype=np.int64)
            prefix = "train" if name in ("train", "all") else "test"
            out[f"x_{prefix}"], out[f"y_{prefix}"] = x, y
    parts = [out[k] for k in sorted(out)]
    out["fingerprint"] = np.array(fingerprint_arrays(*parts))
    return out


def _decode(path: Path, mode: str, size: tuple[int, int], resize: bool) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            img = opened.convert(mode)
            if img.size != (size[1], size[0]):
                if not resize:
                    raise DataError(
                        f"image {path} is {img.size[0]}×{img.size[1]}, "
                        f"others are {size[1]}×{size[0]}; "
                        "set data.image_size: [height, width] to resize"
                    )
                img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"image {path} is unreadable or corrupt ({exc})") from None
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def _first_image_info(listing: dict[str, list[Path]]) -> tuple[Path, str, tuple[int, int]]:
    from PIL import Image, UnidentifiedImageError

    first = next(p for files in listing.values() for p in files)
    try:
        with Image.open(first) as img:
            return first, img.mode, (img.size[1], img.size[0])
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"image {first} is unreadable or corrupt ({exc})") from None


def _color_mode(listing: dict[str, list[Path]], config: DataConfig) -> str:
    if config.color != "auto":
        return "RGB" if config.color == "rgb" else "L"
    _, mode, _ = _first_image_info(listing)
    return "L" if mode in ("L", "1", "I;16", "I") else "RGB"


def _target_size(listing: dict[str, list[Path]], config: DataConfig) -> tuple[int, int]:
    if config.image_size is not None:
        return (int(config.image_size[0]), int(config.image_size[1]))
    _, _, size = _first_image_info(listing)
    return size
