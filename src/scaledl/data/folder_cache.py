"""What the class-folder readers (images, audio) share: the per-class file limit and the
decoded-array cache keyed by the file listing (names, sizes, modification times)."""

from __future__ import annotations

import hashlib
import logging
import zipfile
from pathlib import Path

import numpy as np

from scaledl.fsio import atomic_path

log = logging.getLogger(__name__)


def limit_per_class(files: list[Path], per_class: int | None) -> list[Path]:
    """The first `per_class` files of each class folder, in the given order."""
    if per_class is None:
        return files
    kept: dict[str, list[Path]] = {}
    for p in files:
        bucket = kept.setdefault(p.parent.name, [])
        if len(bucket) < per_class:
            bucket.append(p)
    return [p for bucket in kept.values() for p in bucket]


def listing_key(head: str, root: Path, listing: dict[str, list[Path]]) -> str:
    """A cache key: `head` (decoding settings) plus every listed file's name, size and mtime."""
    digest = hashlib.sha256(head.encode())
    for name, files in sorted(listing.items()):
        for p in files:
            st = p.stat()
            digest.update(f"{name}|{p.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


def read_cache(path: Path, what: str) -> dict[str, np.ndarray] | None:
    """The cached arrays; None when absent or unreadable (then the files are decoded again)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("ignoring unreadable %s cache %s (%s)", what, path, exc)
        return None


def write_cache(path: Path, arrays: dict[str, np.ndarray], what: str) -> None:
    """Atomically; a cache that cannot be written (read-only home) only costs a warning."""
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]
    except OSError as exc:
        log.warning("could not write %s cache %s (%s)", what, path, exc)
