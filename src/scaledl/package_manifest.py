"""Reading a package's `manifest.json`: bytes → JSON → migrated → the typed contract.

A manifest is untrusted input. It is decoded with a size cap (the callers check it), any earlier
format is migrated in memory (`scaledl.contract.migrations`), and every field is validated by
the contract (`scaledl.contract.Manifest`): one PackageError names the first bad fields. The
raw JSON is kept beside the typed manifest, because checksums and the signature cover it as
written.
"""

from __future__ import annotations

import json
from typing import Any

from scaledl.contract import Manifest, migrate
from scaledl.contract.files import MANIFEST, MAX_FILES, MODEL_ONNX, PROFILE
from scaledl.contract.files import check_file_name as _check_name
from scaledl.errors import PackageError
from scaledl.validation import validate

__all__ = [
    "MANIFEST",
    "MAX_FILES",
    "MODEL_ONNX",
    "PROFILE",
    "check_file_name",
    "parse_manifest_bytes",
    "validate_manifest",
]


def check_file_name(rel: Any, where: str = "package") -> str:
    """`contract.files.check_file_name` as a PackageError naming where the name came from."""
    try:
        return _check_name(rel)
    except ValueError as exc:
        raise PackageError(f"{where}: {exc}") from None


def validate_manifest(raw: Any, source: object) -> Manifest:
    """The typed manifest from its JSON (any earlier format migrated first)."""
    if not isinstance(raw, dict):
        raise PackageError(f"package {source}: {MANIFEST} must hold a JSON object")
    try:
        body = migrate(raw)
    except ValueError as exc:
        raise PackageError(f"package {source}: {MANIFEST}: {exc}") from None
    return validate(Manifest, body, f"package {source}: {MANIFEST}", PackageError)


def parse_manifest_bytes(data: bytes, source: object) -> tuple[Manifest, dict[str, Any]]:
    """Decode and validate manifest.json bytes: (typed manifest, the JSON as written)."""
    try:
        raw = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        text = str(exc)[:200]
        raise PackageError(f"package {source}: {MANIFEST} is not valid JSON ({text})") from None
    return validate_manifest(raw, source), raw
