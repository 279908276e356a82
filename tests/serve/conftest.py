"""Shared fixtures: one model repository and one real server process for most e2e tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.serve.helpers import (
    ServerProcess,
    copy_package,
    corrupt_package,
    negated_package,
    types_package,
)


@pytest.fixture(scope="session")
def serve_repo(digits_package: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """REPO/<model>/<version>/ with good, corrupt and multi-datatype packages.

    digits 1, 2 (served: 2) and 3 (corrupt: refused, 2 stays the latest good one);
    rollout 1 (pinned primary), 2 (same graph), 3 (negated outputs: a different model);
    swap 1, 2 (hot swap under load); broken 1 (corrupt: not served); types 1;
    limits 1 (a one-request queue and a timeout shorter than its batching delay).
    """
    repo = tmp_path_factory.mktemp("repo")
    for model, version in [
        ("limits", 1),
        ("digits", 1),
        ("digits", 2),
        ("rollout", 1),
        ("rollout", 2),
        ("swap", 1),
        ("swap", 2),
    ]:
        copy_package(digits_package, repo / model / str(version))
    corrupt_package(copy_package(digits_package, repo / "digits" / "3"))
    corrupt_package(copy_package(digits_package, repo / "broken" / "1"))
    negated_package(digits_package, repo / "rollout" / "3")
    types_package(repo / "types" / "1")
    return repo


@pytest.fixture(scope="session")
def api_keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from scaledl.serve.keys import create_key

    path = tmp_path_factory.mktemp("keys") / "keys.json"
    infer, _ = create_key(path, "infer", "tests")
    admin, _ = create_key(path, "admin", "tests")
    return {"file": str(path), "infer": infer, "admin": admin}


@pytest.fixture(scope="session")
def server(
    serve_repo: Path, api_keys: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    config = tmp_path_factory.mktemp("config") / "models.yaml"
    config.write_text(
        "limits: {max_queue: 1, max_queue_delay_ms: 1000, request_timeout_s: 0.3, "
        "tune_batch_size: false}\n"
    )
    proc = ServerProcess(
        [
            str(serve_repo),
            "--api-keys",
            api_keys["file"],
            "--pin",
            "rollout=1",
            "--extension",
            "tests.serve.ext_sample:create",
            "--max-queue-delay-ms",
            "2",
            "--model-config",
            str(config),
            "--grpc-port",
            "0",
        ]
    )
    try:
        yield proc.wait_ready()
    finally:
        proc.stop()


@pytest.fixture()
def client(server: ServerProcess, api_keys: dict[str, str]) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {api_keys['infer']}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as c:
        yield c


@pytest.fixture()
def admin(server: ServerProcess, api_keys: dict[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.url, headers={"X-API-Key": api_keys["admin"]}, timeout=60
    ) as c:
        yield c


@pytest.fixture(scope="session")
def hardened(
    digits_package: Path, api_keys: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One server for the attacks of the hardening suite: short timeouts, a small descriptor
    budget (256, so the connection cap comes out at 192), the monitor for feedback, and
    batches of 8 so big requests are split into many chunks."""
    repo = tmp_path_factory.mktemp("hardened-repo")
    copy_package(digits_package, repo / "digits" / "1")
    corrupt_package(copy_package(digits_package, repo / "digits" / "2"))  # refused, with a reason
    proc = ServerProcess(
        [
            str(repo),
            "--api-keys",
            api_keys["file"],
            "--monitor",
            "--header-timeout",
            "1",
            "--body-timeout",
            "2",
            "--max-batch-size",
            "8",
            "--no-batch-tuning",
        ],
        max_open_files=256,
    )
    try:
        yield proc.wait_ready()
    finally:
        proc.stop()
