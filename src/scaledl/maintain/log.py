"""The decision log: one JSON object per line, appended, never rewritten.

Every record carries `ts` (UTC ISO time), `run` (the run id), `model`, `step` and the numbers
behind it. Each record is one `write()` on a file opened with O_APPEND, then fsync'd, so
concurrent readers (and a crash) see whole lines only.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class DecisionLog:
    def __init__(self, path: Path, run_id: str, model: str) -> None:
        self.path = Path(path)
        self.run_id = run_id
        self.model = model
        self.records: list[dict[str, Any]] = []
        self.started = time.monotonic()
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, step: str, **fields: Any) -> dict[str, Any]:
        record = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "run": self.run_id,
            "model": self.model,
            "step": step,
            "elapsed_s": round(time.monotonic() - self.started, 3),
            **fields,
        }
        line = json.dumps(_clean(record), allow_nan=False, ensure_ascii=False, default=str) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        self.records.append(record)
        log.info("maintain %s: %s", self.model, step)
        return record


def _clean(value: Any) -> Any:
    """JSON has no NaN/Inf: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _clean(value.item())
    return value


def read_log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
