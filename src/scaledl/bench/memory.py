"""Peak resident memory of a piece of work, measured in this process.

Linux keeps the peak RSS in /proc/self/status (VmHWM) and lets a process reset it by writing
"5" to /proc/self/clear_refs. Reset, do the work, read the peak, subtract the RSS at the start:
the extra memory that loading and running the model needed (allocator arenas included).
Elsewhere the figures are None rather than a guess.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int | None:
    try:
        match = re.search(rf"^{field}:\s+(\d+) kB", STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _reset_peak() -> bool:
    try:
        CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def measure_peak(work: Callable[[], T]) -> tuple[T, dict[str, Any]]:
    """Run `work()`; return its result and {peak_rss_mb, extra_peak_mb} (None when unknown)."""
    reset = _reset_peak()
    before = _status_kib("VmRSS")
    result = work()
    peak = _status_kib("VmHWM")
    if not reset or before is None or peak is None:
        return result, {"peak_rss_mb": None, "extra_peak_mb": None}
    return result, {
        "peak_rss_mb": round(peak / 1024, 2),
        "extra_peak_mb": round(max(peak - before, 0) / 1024, 2),
    }
