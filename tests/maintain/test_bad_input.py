"""Bad input → exit 2 with a message naming the input, before anything is written."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.conftest import run_cli


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def maintain(repo: Path, *args: str) -> tuple[int, str]:
    result = run_cli("maintain", str(repo), *args, timeout=120)
    return result.returncode, result.stdout + result.stderr


def assert_untouched(repo: Path) -> None:
    assert not (repo / "digits" / ".maintain").exists()
    assert sorted(p.name for p in (repo / "digits").iterdir()) == ["1"]


@pytest.mark.e2e
def test_unknown_model(repo: Path, new_data: dict[str, Path]) -> None:
    code, out = maintain(repo, "--model", "cats", "--new-data", str(new_data["shifted"]))
    assert code == 2
    assert "--model 'cats' is not in the repository" in out and "digits" in out
    assert "Traceback" not in out


@pytest.mark.e2e
def test_empty_and_missing_repository(tmp_path: Path, new_data: dict[str, Path]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out = maintain(empty, "--model", "digits", "--new-data", str(new_data["shifted"]))
    assert code == 2 and "holds no model packages" in out
    code, out = maintain(tmp_path / "nope", "-m", "digits", "--new-data", "x.npz")
    assert code == 2 and "does not exist" in out


@pytest.mark.e2e
def test_a_single_package_is_not_a_repository(
    digits_package: Path, new_data: dict[str, Path]
) -> None:
    code, out = maintain(digits_package, "-m", "digits", "--new-data", str(new_data["shifted"]))
    assert code == 2 and "is not a repository folder" in out


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("missing", "--new-data {path}: no such file or folder"),
        ("unlabelled", "has no labels (array 'y')"),
        ("wrong_shape", "has samples of shape (1, 4, 4); the model takes (1, 8, 8)"),
    ],
)
def test_bad_new_data(
    repo: Path, new_data: dict[str, Path], tmp_path: Path, data: str, message: str
) -> None:
    path = new_data.get(data, tmp_path / "missing.npz")
    code, out = maintain(repo, "--model", "digits", "--new-data", str(path))
    assert code == 2, out
    assert message.format(path=path) in " ".join(out.split())
    assert_untouched(repo)


@pytest.mark.e2e
def test_unreachable_server(repo: Path, new_data: dict[str, Path]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, out = maintain(
        repo, "-m", "digits", "--new-data", str(new_data["shifted"]), "--server", url
    )
    assert code == 2
    flat = " ".join(out.split())
    assert f"--server {url}: cannot reach the server" in flat and "scaledl serve" in flat
    assert_untouched(repo)


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policy", "blue-green"], "'blue-green' is not one of"),
        (["--canary-weight", "0"], "--canary-weight: Input should be greater than 0 (got float"),
        (["--set", "finetune.epoch=2"], "unknown key --set finetune.epoch (valid keys in"),
        (["--server", "127.0.0.1:8000"], "expected http://HOST:PORT"),
        (["--live-version", "7"], "has no version '7'"),
    ],
)
def test_bad_flags(repo: Path, new_data: dict[str, Path], args: list[str], message: str) -> None:
    code, out = maintain(repo, "-m", "digits", "--new-data", str(new_data["shifted"]), *args)
    assert code == 2, out
    assert message in " ".join(out.replace("│", " ").split())  # click's box may wrap it
    assert_untouched(repo)
