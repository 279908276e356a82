"""Audio folders (one sub-folder per class), decoded once and cached as float32 waveforms.

Every clip is mixed down to mono, resampled to `data.audio.sample_rate` and padded or cropped
(centred) to `data.audio.duration_s`. The decoded arrays are cached (`SCALEDL_CACHE_DIR`, as
image folders are) under a key made of the file list (names, sizes, modification times) and the
settings that change the samples, and written atomically.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from scaledl.config.audio import AudioConfig
from scaledl.config.data import DataConfig
from scaledl.data.audio_io import AUDIO_SUFFIXES, prepare, read_audio_file
from scaledl.data.dataset import ArraySet, LoadedData, fingerprint_arrays
from scaledl.data.folder_cache import limit_per_class, listing_key, read_cache, write_cache
from scaledl.data.images import IMAGE_SUFFIXES, default_cache_dir
from scaledl.errors import DataError
from scaledl.ui import progress

log = logging.getLogger(__name__)
CACHE_VERSION = "1"
DEFAULT_RATE = 16_000


def looks_like_audio_folder(root: Path) -> bool:
    """True when the class sub-folders of `root` (or of `root/train`) hold audio files."""
    base = root / "train" if (root / "train").is_dir() else root
    try:
        class_dirs = sorted(p for p in base.iterdir() if p.is_dir())[:4]
        audio = image = 0
        for folder in class_dirs:
            for p in list(folder.iterdir())[:50]:
                suffix = p.suffix.lower()
                audio += suffix in AUDIO_SUFFIXES
                image += suffix in IMAGE_SUFFIXES
    except OSError:
        return False
    return audio > 0 and audio >= image


def clip_samples(settings: AudioConfig) -> int:
    return max(1, round(settings.duration_s * target_rate(settings)))


def target_rate(settings: AudioConfig) -> int:
    return settings.sample_rate or DEFAULT_RATE


def read_audio_folder(root: Path, config: DataConfig, task: str) -> LoadedData:
    if task != "classification":
        raise DataError(f"audio folder {root} is for classification; got task {task!r}")
    per_class = config.limit_per_class
    listing = {name: limit_per_class(files, per_class) for name, files in _layout(root).items()}
    classes = sorted({p.parent.name for files in listing.values() for p in files})
    cache_dir = Path(config.cache_dir).expanduser() if config.cache_dir else default_cache_dir()
    cache_file = cache_dir / f"audio-{_cache_key(root, listing, config.audio)}.npz"
    arrays = read_cache(cache_file, "audio")
    if arrays is None:
        arrays = _decode_all(listing, classes, config.audio)
        write_cache(cache_file, arrays, "audio")
    else:
        log.info("audio folder %s: read decoded cache %s", root, cache_file)
    data = ArraySet(arrays["x_train"], arrays["y_train"])
    test = ArraySet(arrays["x_test"], arrays["y_test"]) if "x_test" in arrays else None
    return LoadedData(
        data=data,
        test=test,
        kind="audio",
        labels=classes,
        scale=1.0,
        fingerprint=str(arrays["fingerprint"]),
        source=str(root),
    )


def _layout(root: Path) -> dict[str, list[Path]]:
    """{'train': files, 'test': files} or {'all': files}; each file's parent is its class."""
    named = {n: root / n for n in ("train", "test") if (root / n).is_dir()}
    splits = {n: _class_files(d) for n, d in named.items()} if "train" in named else {}
    if not splits:
        splits = {"all": _class_files(root)}
    for name, files in splits.items():
        if not files:
            raise DataError(
                f"audio folder {root}: no audio in {name!r}; expected one sub-folder per class "
                f"holding {', '.join(sorted(AUDIO_SUFFIXES))} files"
            )
    if "test" in splits:
        unknown = {p.parent.name for p in splits["test"]} - {p.parent.name for p in splits["train"]}
        if unknown:
            raise DataError(
                f"audio folder {root}: test classes {sorted(unknown)} are not in train/"
            )
    return splits


def _class_files(folder: Path) -> list[Path]:
    files: list[Path] = []
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        files.extend(
            sorted(
                p for p in class_dir.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()
            )
        )
    return files


def _cache_key(root: Path, listing: dict[str, list[Path]], settings: AudioConfig) -> str:
    head = f"v{CACHE_VERSION}|{target_rate(settings)}|{clip_samples(settings)}"
    return listing_key(head, root, listing)


def _decode_all(
    listing: dict[str, list[Path]], classes: list[str], settings: AudioConfig
) -> dict[str, np.ndarray]:
    rate, samples = target_rate(settings), clip_samples(settings)
    class_id = {c: i for i, c in enumerate(classes)}
    out: dict[str, np.ndarray] = {}
    total = sum(len(f) for f in listing.values())

    def decode(path: Path) -> np.ndarray:
        return prepare(read_audio_file(path), rate, samples)

    with progress("decoding audio", total) as bar, ThreadPoolExecutor(max_workers=4) as pool:
        for name, files in listing.items():
            x = np.empty((len(files), samples), np.float32)
            for i, wave in enumerate(pool.map(decode, files)):
                x[i] = wave
                bar.advance()
            y = np.array([class_id[p.parent.name] for p in files], dtype=np.int64)
            prefix = "train" if name in ("train", "all") else "test"
            out[f"x_{prefix}"], out[f"y_{prefix}"] = x, y
    parts = [out[k] for k in sorted(out)]
    out["fingerprint"] = np.array(fingerprint_arrays(*parts))
    return out
