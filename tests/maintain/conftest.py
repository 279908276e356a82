"""Fixtures for maintenance runs: digits repositories, shifted and mislabelled new data, a real
server subprocess on 127.0.0.1, and a load loop that counts what the server answers."""

from __future__ import annotations

import shutil
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.serve.helpers import ServerProcess
from tests.v2 import infer_body

# Tiny fine-tunes, one torch thread (on a busy 2-core machine two threads were 4× slower:
# OpenMP barriers wait for descheduled threads), a fast exporter: the area's tests stay small.
FAST = [
    "--set",
    "finetune.epochs=2",
    "--set",
    "finetune.lr=0.003",
    "--set",
    "finetune.threads=1",
    "--set",
    "finetune.exporter=legacy",
]


def digits_rows(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    index = np.random.default_rng(seed).permutation(len(bunch.target))[:count]
    return bunch.images[index].astype(np.float32), bunch.target[index].astype(np.int64)


@pytest.fixture(scope="session")
def new_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Labelled new data in the raw digits form (8×8, values 0–16).

    shifted: inverted intensities (16 − x), labels correct — the live model gets most wrong
    (shifted_small: 300 of them);
    permuted: every digit, labels rotated (a harmful update: more wrong rows than old ones);
    clean: the live model's own held-out digits, labels correct;
    unlabelled: x only; wrong_shape: 4×4 images.
    """
    from scaledl.data import DataConfig
    from scaledl.modalities import load_splits

    folder = tmp_path_factory.mktemp("new-data")
    x, y = digits_rows(700, seed=1)
    every_x, every_y = digits_rows(1797, seed=2)
    held_out = load_splits(DataConfig(source="digits"), seed=0).test  # never trained on
    files = {
        "shifted": {"x": 16.0 - x, "y": y},
        "shifted_small": {"x": 16.0 - x[:300], "y": y[:300]},
        "permuted": {"x": every_x, "y": (every_y + 1) % 10},
        "clean": {"x": held_out.x[:, 0].astype(np.float32), "y": held_out.y},
        "unlabelled": {"x": x},
        "wrong_shape": {"x": x[:, :4, :4], "y": y},
    }
    out = {}
    for name, arrays in files.items():
        out[name] = folder / f"{name}.npz"
        np.savez(out[name], **arrays)
    return out


def make_repo(package: Path, root: Path, model: str = "digits") -> Path:
    (root / model).mkdir(parents=True)
    shutil.copytree(package, root / model / "1")
    return root


@pytest.fixture()
def repo(digits_package: Path, tmp_path: Path) -> Path:
    return make_repo(digits_package, tmp_path / "repo")


@pytest.fixture()
def keys(tmp_path: Path) -> dict[str, str]:
    from scaledl.serve.keys import create_key

    path = tmp_path / "keys.json"
    infer, _ = create_key(path, "infer", "tests")
    admin, _ = create_key(path, "admin", "tests")
    return {"file": str(path), "infer": infer, "admin": admin}


@pytest.fixture()
def serve(repo: Path, keys: dict[str, str]) -> Iterator[ServerProcess]:
    proc = ServerProcess([str(repo), "--api-keys", keys["file"], "--monitor"])
    try:
        yield proc.wait_ready()
    finally:
        proc.stop()


@dataclass
class Traffic:
    """Unpinned requests to the model in a loop: (status, answering version) counts."""

    url: str
    key: str
    model: str = "digits"
    counts: Counter[tuple[int, str]] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def infer_once(self, client: httpx.Client) -> tuple[int, str]:
        body = infer_body(np.zeros((1, 1, 8, 8), np.float32))
        try:
            r = client.post(f"/v2/models/{self.model}/infer", json=body)
        except httpx.HTTPError as exc:
            return -1, type(exc).__name__
        version = r.json().get("model_version", "?") if r.status_code == 200 else r.text[:80]
        return r.status_code, str(version)

    def _loop(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=30) as client:
            while not self._stop.is_set():
                self.counts[self.infer_once(client)] += 1
                self._stop.wait(0.03)  # steady, light: the fine-tune shares the two cores

    def __enter__(self) -> Traffic:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(30)

    def failures(self) -> int:
        return sum(n for (status, _), n in self.counts.items() if status != 200)

    def versions(self) -> set[str]:
        return {v for (status, v), _ in self.counts.items() if status == 200}
