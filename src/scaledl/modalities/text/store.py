"""Files a text model needs at `to_graph` time, kept in memory by their sha256.

The tokenizer (and the monitor's token table) live inside the package; the spec names them by
hash. Fitting registers what it made, opening a package registers what it holds (after checking
each hash against the spec), and every stage looks them up by the spec's hash — so the same
bytes serve training, `evaluate`, `verify`, the server and the monitor. Parsed forms are cached
per (hash, settings). The store is bounded (least recently used files are dropped).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from scaledl.errors import DataError, PackageError

STORE_SIZE = 64

_FILES: OrderedDict[str, bytes] = OrderedDict()
_PARSED: dict[tuple[str, Hashable], Any] = {}
_LOCK = threading.Lock()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def register(data: bytes, expected_sha256: str | None = None, what: str = "file") -> str:
    """Keep `data`; refuse it when its hash is not `expected_sha256`. Returns its sha256."""
    digest = sha256_hex(data)
    if expected_sha256 is not None and digest != expected_sha256:
        raise PackageError(
            f"{what} has sha256 {digest[:12]}…, the preprocessing spec says "
            f"{expected_sha256[:12]}…; it does not belong to this model"
        )
    with _LOCK:
        if digest in _FILES:
            _FILES.move_to_end(digest)
            return digest
        _FILES[digest] = data
        while len(_FILES) > STORE_SIZE:
            gone, _ = _FILES.popitem(last=False)
            for key in [k for k in _PARSED if k[0] == gone]:
                del _PARSED[key]
    return digest


def data_of(sha256: str) -> bytes | None:
    with _LOCK:
        return _FILES.get(sha256)


def parsed(sha256: str, settings: Hashable, parse: Callable[[bytes], Any], what: str) -> Any:
    """The parsed form of a stored file for `settings` (parsed once, then shared)."""
    key = (sha256, settings)
    with _LOCK:
        found = _PARSED.get(key)
        data = _FILES.get(sha256)
    if found is not None:
        return found
    if data is None:
        raise DataError(
            f"the {what} of this text model (sha256 {sha256[:12]}…) is not loaded; open its "
            "package first (scaledl.package.open_package)"
        )
    made = parse(data)
    with _LOCK:
        return _PARSED.setdefault(key, made)
