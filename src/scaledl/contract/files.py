"""The package's file names: which names exist, and what a name a manifest gives may look like.

A manifest is data from anyone: every file name it gives (`files`, `model_file`,
`monitoring.profile`) must be a plain relative name inside the package.
"""

from __future__ import annotations

import re
from typing import Any

MANIFEST = "manifest.json"
MODEL_ONNX = "model.onnx"
PROFILE = "profile.npz"
MAX_FILES = 256  # a package holds about ten files; hundreds is a crafted one
MAX_FILE_NAME = 255


def check_file_name(rel: Any) -> str:
    """A relative POSIX name inside the package: no `..`, `.`, empty parts, `\\`, drive or NUL.

    Raises ValueError (pydantic turns it into a field error; callers outside a model wrap it).
    """
    valid = (
        isinstance(rel, str)
        and 0 < len(rel) <= 4 * MAX_FILE_NAME
        and not rel.startswith("/")
        and "\\" not in rel
        and "\x00" not in rel
        and not re.match(r"^[A-Za-z]:", rel)
        and all(
            part not in ("", ".", "..") and len(part) <= MAX_FILE_NAME for part in rel.split("/")
        )
    )
    if not valid:
        raise ValueError(
            f"file name {str(rel)[:200]!r} must be a relative path inside the package "
            "(like model.onnx or sub/file.bin: no '..', no leading '/', no '\\')"
        )
    return str(rel)
