"""API keys: shown once, stored as hashes, scoped, revocable."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from scaledl.errors import AuthenticationError, PermissionDeniedError, UsageError
from scaledl.serve.auth import Authenticator
from scaledl.serve.keys import create_key, hash_key, read_keys, revoke_key
from tests.conftest import run_cli


def test_cli_prints_the_key_once_and_stores_only_its_hash(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    result = run_cli("keys", "create", "--scope", "infer", "--file", str(path), "--name", "ci")
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    assert key.startswith("sdk_") and len(key) > 40
    text = path.read_text()
    assert key not in text and hash_key(key) in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    listed = run_cli("keys", "list", "--file", str(path))
    assert "infer" in listed.stdout and "ci" in listed.stdout and key not in listed.stdout
    bad = run_cli("keys", "create", "--scope", "root", "--file", str(path))
    assert bad.returncode == 2 and "infer, admin" in bad.stderr


def test_scopes_and_revocation(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    infer, infer_entry = create_key(path, "infer")
    admin, _ = create_key(path, "admin")
    auth = Authenticator(path, enabled=True)
    assert auth.check(f"Bearer {infer}", None, "infer") is not None
    assert auth.check(None, admin, "admin") is not None
    assert auth.check(None, admin, "infer") is not None  # admin includes infer
    with pytest.raises(PermissionDeniedError):
        auth.check(None, infer, "admin")
    with pytest.raises(AuthenticationError):
        auth.check(None, None, "infer")
    with pytest.raises(AuthenticationError):
        auth.check("Basic abc", None, "infer")
    revoke_key(path, infer_entry.id)
    assert [e.scope for e in read_keys(path)] == ["admin"]
    assert auth.store is not None
    auth.store.reload()
    with pytest.raises(AuthenticationError):
        auth.check(None, infer, "infer")
    assert Authenticator(None, enabled=False).check(None, None, "admin") is None
    with pytest.raises(UsageError, match="no API key file"):
        Authenticator(None, enabled=True)  # not an open server answering 500s


def test_unreadable_key_files_are_usage_errors(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    with pytest.raises(UsageError, match="does not exist"):
        read_keys(path)
    path.write_text(json.dumps({"nope": 1}))
    with pytest.raises(UsageError, match="not a scaledl key file"):
        read_keys(path)
