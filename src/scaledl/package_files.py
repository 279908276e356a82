"""Read the array files inside a package (`sample.npz`, …) without trusting them.

An `.npz` is a zip: its members are checked for count and declared size before numpy inflates
them, pickled objects are refused, and a missing array or an unreadable file is a PackageError
naming the file, never a KeyError or a zlib traceback.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from typing import Any

import numpy as np

from scaledl.errors import PackageError

MAX_NPZ_BYTES = 1 << 30  # held-out samples and profiles are megabytes
MAX_NPZ_MEMBERS = 64


def read_npz(
    pkg: Any,
    name: str,
    keys: Iterable[str],
    max_bytes: int = MAX_NPZ_BYTES,
    optional: Iterable[str] = (),
) -> dict[str, np.ndarray]:
    """The arrays `keys` (and those of `optional` present) of the package's listed file `name`
    (an .npz), checked and loaded: numbers, or fixed-width strings (raw texts)."""
    path = pkg.file(name)
    where = f"package {pkg.source}: {name}"
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise PackageError(f"{where} is not a readable .npz ({str(exc)[:200]})") from None
    declared = sum(i.file_size for i in infos)
    if len(infos) > MAX_NPZ_MEMBERS or declared > max_bytes:
        raise PackageError(
            f"{where} declares {len(infos)} arrays, {declared / 2**20:,.1f} MB in all "
            f"(at most {MAX_NPZ_MEMBERS} and {max_bytes / 2**20:,.0f} MB)"
        )
    wanted = list(keys)
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in wanted if k not in npz.files]
            if missing:
                raise PackageError(f"{where} lacks array(s) {missing}; it has {sorted(npz.files)}")
            wanted += [k for k in optional if k in npz.files and k not in wanted]
            arrays = {k: np.asarray(npz[k]) for k in wanted}
    except PackageError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise PackageError(f"{where} is unreadable ({str(exc)[:200]})") from None
    for key, array in arrays.items():
        if array.dtype.kind not in "biufU":
            raise PackageError(f"{where}: array {key!r} holds {array.dtype}, not numbers or text")
    return arrays
