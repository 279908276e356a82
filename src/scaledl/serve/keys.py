"""API keys: created once, shown once, stored only as a SHA-256 hash with their scope.

A key is `sdk_<id>_<secret>`: the id (public, 8 hex chars) names the key in logs and in
`scaledl keys list/revoke`; the secret is 32 random bytes. Keys are high-entropy, so a plain
SHA-256 is the right hash (no password stretching needed), and a lookup by hash leaks nothing
useful through timing. The file is JSON, written atomically with mode 0600:

    {"format": "scaledl.keys/1", "keys": [{"id": …, "scope": "infer"|"admin", "name": …,
     "sha256": …, "created_at": …}]}

Scopes: `infer` (metadata, inference, predict, metrics) and `admin` (everything, including the
repository and rollout API).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaledl.errors import UsageError
from scaledl.fsio import atomic_write_text
from scaledl.package import now_iso

FORMAT = "scaledl.keys/1"
SCOPES = ("infer", "admin")
PREFIX = "sdk_"


@dataclass(frozen=True, slots=True)
class KeyEntry:
    id: str
    scope: str
    sha256: str
    name: str = ""
    created_at: str = ""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def read_keys(path: Path) -> list[KeyEntry]:
    path = Path(path)
    if not path.exists():
        raise UsageError(
            f"API key file {path} does not exist; create it with `scaledl keys create`"
        )
    try:
        doc = json.loads(path.read_text())
        entries = [
            KeyEntry(
                id=str(k["id"]),
                scope=str(k["scope"]),
                sha256=str(k["sha256"]),
                name=str(k.get("name", "")),
                created_at=str(k.get("created_at", "")),
            )
            for k in doc["keys"]
        ]
    except (OSError, ValueError, KeyError, TypeError):
        raise UsageError(
            f"API key file {path} is not a scaledl key file (expected JSON with a 'keys' list)"
        ) from None
    bad = [e.id for e in entries if e.scope not in SCOPES]
    if bad:
        raise UsageError(f"API key file {path}: key {bad[0]} has an unknown scope")
    return entries


def write_keys(path: Path, entries: list[KeyEntry]) -> None:
    doc: dict[str, Any] = {
        "format": FORMAT,
        "keys": [
            {
                "id": e.id,
                "scope": e.scope,
                "name": e.name,
                "sha256": e.sha256,
                "created_at": e.created_at,
            }
            for e in entries
        ],
    }
    atomic_write_text(Path(path), json.dumps(doc, indent=2) + "\n")
    os.chmod(path, 0o600)


def create_key(path: Path, scope: str, name: str = "") -> tuple[str, KeyEntry]:
    """Append a new key to `path` (created if missing); return the key, which is not stored."""
    if scope not in SCOPES:
        raise UsageError(f"--scope {scope!r}: valid scopes are {', '.join(SCOPES)}")
    path = Path(path)
    entries = read_keys(path) if path.exists() else []
    taken = {e.id for e in entries}
    key_id = secrets.token_hex(4)
    while key_id in taken:
        key_id = secrets.token_hex(4)
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    entry = KeyEntry(id=key_id, scope=scope, sha256=hash_key(key), name=name, created_at=now_iso())
    write_keys(path, [*entries, entry])
    return key, entry


def revoke_key(path: Path, key_id: str) -> KeyEntry:
    entries = read_keys(path)
    keep = [e for e in entries if e.id != key_id]
    if len(keep) == len(entries):
        ids = ", ".join(e.id for e in entries) or "none"
        raise UsageError(f"no key with id {key_id!r} in {path} (ids: {ids})")
    write_keys(path, keep)
    return next(e for e in entries if e.id == key_id)


class KeyStore:
    """Hash → entry, re-read when the file changes (so revocation needs no restart)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._by_hash: dict[str, KeyEntry] = {}
        self._recent: dict[str, KeyEntry] = {}
        self._stamp: tuple[float, int] | None = None
        self._checked = 0.0
        self.reload()

    def reload(self) -> None:
        stat = self.path.stat()
        self._by_hash = {e.sha256: e for e in read_keys(self.path)}
        self._recent = {}
        self._stamp = (stat.st_mtime, stat.st_size)

    def maybe_reload(self, now: float) -> None:
        if now - self._checked < 1.0:
            return
        self._checked = now
        try:
            stat = self.path.stat()
            if (stat.st_mtime, stat.st_size) != self._stamp:
                self.reload()
        except (OSError, UsageError):
            pass  # keep the keys we have; a broken rewrite must not lock everyone out

    def lookup(self, key: str) -> KeyEntry | None:
        """The key's entry; keys already seen skip the hash (the cache empties on reload)."""
        entry = self._recent.get(key)
        if entry is None:
            entry = self._by_hash.get(hash_key(key))
            if entry is not None and len(self._recent) < 1024:
                self._recent[key] = entry
        return entry

    def __len__(self) -> int:
        return len(self._by_hash)
