"""Who may call what: API keys with scopes, read from `Authorization: Bearer` or `X-API-Key`.

No key → 401 (with `WWW-Authenticate: Bearer`), a key without the needed scope → 403. `admin`
includes `infer`. With `--no-auth` every request passes (the server warns at start-up).
"""

from __future__ import annotations

import time
from pathlib import Path

from scaledl.errors import AuthenticationError, PermissionDeniedError, UsageError
from scaledl.serve.keys import KeyEntry, KeyStore

SCOPE_RANK = {"infer": 1, "admin": 2}


class Authenticator:
    def __init__(self, keys_file: Path | None, enabled: bool) -> None:
        if enabled and keys_file is None:  # every entry point, not only the CLI, refuses it
            raise UsageError("authentication is on but no API key file was given (--api-keys)")
        self.enabled = enabled
        self.store = KeyStore(keys_file) if enabled and keys_file is not None else None

    def check(self, authorization: str | None, api_key: str | None, scope: str) -> KeyEntry | None:
        """Raise 401/403 unless the presented key has `scope`; return the key's entry."""
        if not self.enabled:
            return None
        key = api_key
        if key is None and authorization:
            kind, _, value = authorization.partition(" ")
            if kind.lower() == "bearer":
                key = value.strip()
        if not key:
            raise AuthenticationError(
                "an API key is required: send `Authorization: Bearer <key>` or `X-API-Key: <key>`"
            )
        assert self.store is not None
        self.store.maybe_reload(time.monotonic())
        entry = self.store.lookup(key)
        if entry is None:
            raise AuthenticationError("the API key is not valid (unknown or revoked)")
        if SCOPE_RANK[entry.scope] < SCOPE_RANK[scope]:
            raise PermissionDeniedError(
                f"key {entry.id} has scope {entry.scope!r}; this endpoint needs {scope!r}"
            )
        return entry
