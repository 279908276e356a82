"""An audit of which samples each rank trained on, step by step (JSON lines, one file per rank).

Each line: {"attempt", "epoch", "step", "rank", "pid", "time", "index": [...]}. `attempt` is
the launcher's restart count, so after a restart one can check that the run continued at the
exact sample where its last checkpoint left off — no sample repeated or skipped in an epoch.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import IO, Any


class SampleLog:
    def __init__(self, folder: Path, rank: int, attempt: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"rank{rank}.jsonl"
        self.attempt = attempt
        self._file: IO[str] = self.path.open("a", buffering=1)

    def __call__(self, record: dict[str, Any]) -> None:
        line = {
            "attempt": self.attempt,
            "epoch": record["epoch"],
            "step": record["step"],
            "rank": record["rank"],
            "pid": os.getpid(),
            "time": time.time(),
            "index": [int(i) for i in record["index"]],
        }
        self._file.write(json.dumps(line) + "\n")

    def close(self) -> None:
        self._file.close()


def read_sample_log(folder: Path) -> list[dict[str, Any]]:
    """Every record of every rank, in file order per rank."""
    records: list[dict[str, Any]] = []
    for path in sorted(Path(folder).glob("rank*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:  # a line cut short by a killed process
                    continue
    return records
