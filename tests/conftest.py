"""Shared fixtures: a small trained digits package, CLI runner, hermetic caches."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO.parent / "shared" / "datasets"
CIFAR10 = SHARED_DATASETS / "cifar10"


SLOW_TIMEOUT_S = 1800  # slow and e2e tests: real training or a real server on a busy machine


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """pytest-timeout's default (pyproject) for quick tests; more for slow and e2e ones."""
    for item in items:
        slow = item.get_closest_marker("slow") or item.get_closest_marker("e2e")
        if slow and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT_S))


@pytest.fixture(scope="session", autouse=True)
def _hermetic_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Caches under a temp folder; no signing key leaking in from the developer's shell."""
    cache = tmp_path_factory.mktemp("cache")
    saved = {k: os.environ.get(k) for k in ("SCALEDL_CACHE_DIR", "SCALEDL_SIGNING_KEY")}
    os.environ["SCALEDL_CACHE_DIR"] = str(cache)
    os.environ.pop("SCALEDL_SIGNING_KEY", None)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 600, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real `scaledl` CLI in a subprocess (`python -m scaledl ...`)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "scaledl", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=cwd,
    )


def quick_recipe(**overrides: object) -> dict[str, object]:
    """A digits recipe that trains in a few seconds (as a dict, before validation)."""
    recipe: dict[str, object] = {
        "name": "digits-quick",
        "seed": 0,
        "data": {"source": "digits"},
        "model": {"family": "cnn", "channels": [16, 32], "depth": 1},
        "train": {"epochs": 3, "batch_size": 64, "lr": 0.005},
    }
    for key, value in overrides.items():
        recipe[key] = value
    return recipe


@pytest.fixture(scope="session")
def digits_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small CNN trained on digits, packaged (read-only: copy it before changing it)."""
    from scaledl.pipeline.train import train_recipe
    from scaledl.recipe import validate_recipe

    out = tmp_path_factory.mktemp("digits-run")
    recipe = validate_recipe(quick_recipe(train={"epochs": 4, "batch_size": 64, "lr": 0.005}))
    return train_recipe(recipe, out).package
