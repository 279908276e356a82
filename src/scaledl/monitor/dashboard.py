"""The dashboard page: one self-contained HTML file (inline SVG charts drawn by inline JS, no
external assets), with the data embedded as JSON so the first paint needs no second request."""

from __future__ import annotations

import json
import math
from functools import lru_cache
from importlib import resources
from typing import Any


@lru_cache(maxsize=1)
def _template() -> str:
    return (resources.files("scaledl.monitor") / "static" / "dashboard.html").read_text("utf-8")


def finite(value: Any) -> Any:
    """The payload with NaN/inf replaced by None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def render_dashboard(payload: dict[str, Any]) -> str:
    data = json.dumps(finite(payload), allow_nan=False, default=float)
    # Inside <script>, "</" could close the tag early; "<\/" is the same string to JSON.
    return _template().replace("/*PAYLOAD*/", data.replace("</", "<\\/"))
