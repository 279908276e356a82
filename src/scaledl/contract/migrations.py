"""Manifest format migrations, in one place: any earlier format → the current one, in memory.

A package on disk is never rewritten by opening it (its checksums and signature cover the bytes
as written); the upgraded form is what the stages read. Each step takes the JSON of format N and
returns format N + 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scaledl.contract.manifest import FORMAT_PREFIX, FORMAT_VERSION

Step = Callable[[dict[str, Any]], dict[str, Any]]


def format_version(raw: dict[str, Any]) -> int:
    """The manifest's format number; the first packages carried `scaledl.package/1` or nothing."""
    value = raw.get("format")
    if value is None:
        return 1
    if not isinstance(value, str) or not value.startswith(FORMAT_PREFIX):
        raise ValueError(f"format {str(value)[:64]!r} is not a scaledl package format")
    number = value.removeprefix(FORMAT_PREFIX)
    if not number.isdigit():
        raise ValueError(f"format {value[:64]!r} has no version number")
    return int(number)


def _v1_to_v2(raw: dict[str, Any]) -> dict[str, Any]:
    """Format 2 names every optional default explicitly and is validated as a whole.

    Format 1 left the graph's file name, the knobs and the precision implicit.
    """
    body = dict(raw)
    body.setdefault("model_file", "model.onnx")
    body.setdefault("precision", "fp32")
    if body.get("knobs") is None:
        body["knobs"] = {}
    return body


STEPS: dict[int, Step] = {1: _v1_to_v2}


def migrate(raw: dict[str, Any]) -> dict[str, Any]:
    """Upgrade a manifest's JSON to the current format (ValueError for a newer or unknown one)."""
    version = format_version(raw)
    if version > FORMAT_VERSION:
        raise ValueError(
            f"format {version} is newer than this scaledl understands ({FORMAT_VERSION}); "
            "upgrade scaledl to open it"
        )
    body = dict(raw)
    while version < FORMAT_VERSION:
        body = STEPS[version](body)
        version += 1
    body["format"] = f"{FORMAT_PREFIX}{FORMAT_VERSION}"
    return body
