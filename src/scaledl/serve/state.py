"""The desired serving state: which version of each model is primary, canary, shadow.

It is small JSON, so it can live in a file (`--state-file`) that survives restarts and that all
`--workers` processes follow: an admin call changes it under an exclusive file lock, bumping a
revision; every worker polls the revision and converges to it. Without workers or a state file
it lives in memory.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from filelock import AsyncFileLock

from scaledl.errors import UsageError
from scaledl.fsio import atomic_write_text


@dataclass
class RouteState:
    """One model's routing: serializable, compared by value."""

    primary: str
    policy: str = "latest"  # latest | pinned
    canary: str | None = None
    canary_weight: float = 0.0
    shadow: str | None = None
    previous: str | None = None

    def versions(self) -> set[str]:
        live = {self.primary}
        if self.canary:
            live.add(self.canary)
        if self.shadow:
            live.add(self.shadow)
        return live

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RouteState:
        return cls(
            primary=str(raw["primary"]),
            policy=str(raw.get("policy", "latest")),
            canary=raw.get("canary"),
            canary_weight=float(raw.get("canary_weight", 0.0)),
            shadow=raw.get("shadow"),
            previous=raw.get("previous"),
        )


Desired = dict[str, RouteState]


class StateStore:
    """In-memory store; `FileStateStore` adds persistence and cross-process locking."""

    def __init__(self) -> None:
        self.revision = 0
        self._desired: Desired | None = None

    def load(self) -> tuple[int, Desired | None]:
        return self.revision, self._desired

    def save(self, desired: Desired) -> int:
        self.revision += 1
        self._desired = {k: RouteState(**asdict(v)) for k, v in desired.items()}
        return self.revision

    def changed_since(self, revision: int) -> bool:
        return False

    @contextlib.asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        yield


class FileStateStore(StateStore):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(
                f"--state-file {self.path}: cannot create its folder ({exc})"
            ) from None

    def load(self) -> tuple[int, Desired | None]:
        try:
            doc = json.loads(self.path.read_text())
            desired = {m: RouteState.from_json(r) for m, r in doc["models"].items()}
            return int(doc["revision"]), desired
        except FileNotFoundError:
            return 0, None
        except (OSError, ValueError, KeyError, TypeError):
            raise UsageError(
                f"--state-file {self.path} is not a scaledl serving state file; move it away"
            ) from None

    def save(self, desired: Desired) -> int:
        revision, _ = self.load()
        doc = {"revision": revision + 1, "models": {m: r.to_json() for m, r in desired.items()}}
        atomic_write_text(self.path, json.dumps(doc, indent=2) + "\n")
        self.revision = revision + 1
        return self.revision

    def changed_since(self, revision: int) -> bool:
        try:
            doc = json.loads(self.path.read_text())
            return int(doc["revision"]) != revision
        except (OSError, ValueError, KeyError, TypeError):
            return False

    @contextlib.asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        """Exclusive across processes; waits in a thread so the event loop keeps serving."""
        async with AsyncFileLock(self.lock_path, mode=0o600):
            yield
