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


# Inside <script>, "</script" would close the element and "<!--" followed by "<script" would
# switch the HTML parser into a state where "</script>" no longer closes it; "&" and the JS
# line separators are escaped too. "\u003c" is the same character to the JSON parser, so the
# data read back by the page is unchanged whatever a package's labels hold.
SCRIPT_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def script_json(value: Any) -> str:
    """JSON text that is safe to place inside an HTML <script> element."""
    data = json.dumps(finite(value), allow_nan=False, default=float)
    for char, escaped in SCRIPT_ESCAPES.items():
        data = data.replace(char, escaped)
    return data


def render_dashboard(payload: dict[str, Any]) -> str:
    return _template().replace("/*PAYLOAD*/", script_json(payload))
