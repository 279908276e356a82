"""Training on several processes through torch's launcher (gloo, 2 processes, digits).

One undisturbed 2-process run is shared: it is compared with one process (equivalence), with a
run whose worker is SIGKILLed mid-epoch (fault tolerance), and its sample log is audited.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from scaledl.recipe import validate_recipe
from scaledl.train.samplelog import read_sample_log
from tests.conftest import quick_recipe, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
EVERY = 8  # --checkpoint-every for every run here


def _recipe_dict() -> dict[str, Any]:
    return quick_recipe(
        name="digits-ddp",
        augment={"policy": [{"op": "crop", "padding": 1}, {"op": "mixup", "p": 0.2}]},
        model={"family": "cnn", "channels": [16, 32], "depth": 1},
        train={"epochs": 2, "batch_size": 32, "lr": 0.006},
        export={"exporter": "legacy"},
    )


@pytest.fixture(scope="module")
def recipe_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("recipe") / "digits-ddp.yaml"
    path.write_text(yaml.safe_dump(_recipe_dict()))
    return path


def _train_args(recipe: Path, out: Path, log: Path, *extra: str) -> list[str]:
    return ["-v", "train", str(recipe), "--out", str(out), "--sample-log", str(log),
            "--checkpoint-every", str(EVERY), *extra]  # fmt: skip


def _manifest(out: Path) -> dict[str, Any]:
    return json.loads((out / "package" / "manifest.json").read_text())


@pytest.fixture(scope="module")
def two_procs(recipe_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An undisturbed `scaledl train --nproc 2` run."""
    root = tmp_path_factory.mktemp("two")
    result = run_cli(*_train_args(recipe_file, root / "out", root / "log", "--nproc", "2"))
    assert result.returncode == 0, result.stderr[-3000:]
    return {"out": root / "out", "log": root / "log", "stderr": result.stderr}


def _n_train() -> int:
    from scaledl.modalities import load_splits

    recipe = validate_recipe(_recipe_dict())
    return len(load_splits(recipe.data, seed=recipe.seed, task=recipe.task).train)


def _check_every_sample_once_per_epoch(records: list[dict[str, Any]], n: int) -> None:
    for epoch in sorted({r["epoch"] for r in records}):
        seen = np.concatenate([r["index"] for r in records if r["epoch"] == epoch])
        assert np.array_equal(np.sort(seen), np.arange(n)), f"epoch {epoch}"


def test_two_processes_match_one(two_procs: dict[str, Any], tmp_path: Path) -> None:
    from scaledl.pipeline.train import train_recipe

    single = train_recipe(validate_recipe(_recipe_dict()), tmp_path / "one")
    one, two = _manifest(tmp_path / "one"), _manifest(two_procs["out"])
    assert two["metrics"]["train_processes"] == 2
    assert abs(one["metrics"]["accuracy"] - two["metrics"]["accuracy"]) <= 0.005
    # metrics reduced across ranks: the 2-process history is the 1-process one, up to float
    # rounding (DDP averages gradients in another order), which may flip a borderline row or two
    # of the 179 validation rows
    history = json.loads((two_procs["out"] / "package" / "history.json").read_text())
    val_rows = one["lineage"]["split_sizes"]["val"]
    for a, b in zip(single.history, history, strict=True):
        assert a["val_accuracy"] == pytest.approx(b["val_accuracy"], abs=2.5 / val_rows)
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-2)
    assert two["lineage"]["augment"]["policy"][1]["op"] == "mixup"
    # every rank logs with its rank; each trains a disjoint half of every global batch
    assert "[rank 0]" in two_procs["stderr"] and "[rank 1]" in two_procs["stderr"]
    records = read_sample_log(two_procs["log"])
    assert {r["rank"] for r in records} == {0, 1}
    _check_every_sample_once_per_epoch(records, _n_train())


@contextlib.contextmanager
def _stopped_on_exit(proc: subprocess.Popen[str]) -> Iterator[None]:
    """Stop the launcher if the test ends early: on SIGTERM torch's agent stops its workers."""
    try:
        yield
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()


def _wait_for_step(log: Path, proc: subprocess.Popen[str], epoch: int, step: int) -> dict:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        records = [r for r in read_sample_log(log) if r["rank"] == 1]
        if records and (records[-1]["epoch"], records[-1]["step"]) >= (epoch, step):
            return records[-1]
        time.sleep(0.02)
    pytest.fail("training did not reach the step to interrupt")


def test_killed_worker_restarts_from_checkpoint_at_exact_sample(
    two_procs: dict[str, Any], recipe_file: Path, tmp_path: Path
) -> None:
    out, log = tmp_path / "out", tmp_path / "log"
    args = _train_args(recipe_file, out, log, "--nproc", "2", "--max-restarts", "1")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "scaledl", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    with _stopped_on_exit(proc):
        victim = _wait_for_step(log, proc, epoch=1, step=2 * EVERY + 2)
        os.kill(victim["pid"], signal.SIGKILL)
        _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-3000:]

    records = read_sample_log(log)
    before = [r for r in records if r["attempt"] == 0]
    after = [r for r in records if r["attempt"] == 1]
    assert after, "the group did not restart"
    last = max((r["epoch"], r["step"]) for r in before if r["rank"] == 0)
    resumed = min((r["epoch"], r["step"]) for r in after)
    # restarted at the last checkpoint: mid-epoch, on a multiple of EVERY, at most EVERY back
    assert resumed[0] == last[0] and 0 < resumed[1] <= last[1] + 1 < resumed[1] + EVERY + 1
    assert resumed[1] % EVERY == 0
    redone = {(r["epoch"], r["step"], r["rank"]): r["index"] for r in after}
    for r in before:  # steps done twice trained the very same samples
        key = (r["epoch"], r["step"], r["rank"])
        assert redone.get(key, r["index"]) == r["index"]
    effective = [r for r in before if (r["epoch"], r["step"]) < resumed] + after
    assert len(effective) == len(read_sample_log(two_procs["log"]))
    _check_every_sample_once_per_epoch(effective, _n_train())
    # and the run ends exactly where the undisturbed one does
    disturbed, undisturbed = _manifest(out), _manifest(two_procs["out"])
    assert disturbed["metrics"]["accuracy"] == undisturbed["metrics"]["accuracy"]
    assert disturbed["files"]["weights.safetensors"] == undisturbed["files"]["weights.safetensors"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_machines_on_one_host_train_one_model(
    two_procs: dict[str, Any], recipe_file: Path, tmp_path: Path
) -> None:
    """Two launcher groups (torchrun itself and scaledl's --nproc) meet at one endpoint."""
    endpoint = f"127.0.0.1:{_free_port()}"
    out = tmp_path / "out"
    rdzv = ["--nnodes", "2", "--rdzv-endpoint", endpoint, "--rdzv-id", "pair"]
    # two "machines" share this host's cores: one thread each, as a real launcher would pick
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    torchrun = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", *rdzv, "--rdzv-backend", "c10d",
         "--nproc-per-node", "1", "-m", "scaledl", "-v", "train", str(recipe_file),
         "--out", str(out), "--checkpoint-every", str(EVERY)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    with _stopped_on_exit(torchrun):
        ours = run_cli("-v", "train", str(recipe_file), "--out", str(out), "--nproc", "1",
                       *rdzv, "--checkpoint-every", str(EVERY),
                       env={"OMP_NUM_THREADS": "1"})  # fmt: skip
        _, torchrun_err = torchrun.communicate(timeout=600)
    assert ours.returncode == 0, ours.stderr[-3000:]
    assert torchrun.returncode == 0, torchrun_err[-3000:]
    manifest = _manifest(out)
    assert manifest["metrics"]["train_processes"] == 2
    reference = _manifest(two_procs["out"])["metrics"]["accuracy"]
    assert abs(manifest["metrics"]["accuracy"] - reference) <= 0.005
    logs = ours.stderr + torchrun_err
    assert "[rank 0]" in logs and "[rank 1]" in logs


def test_rendezvous_that_never_completes_times_out(recipe_file: Path, tmp_path: Path) -> None:
    endpoint = f"127.0.0.1:{_free_port()}"
    result = run_cli("train", str(recipe_file), "--out", str(tmp_path / "out"), "--nproc", "1",
                     "--nnodes", "2", "--rdzv-endpoint", endpoint, "--rdzv-timeout", "3",
                     timeout=120)  # fmt: skip
    text = " ".join(result.stderr.split())
    assert result.returncode == 2, result.stderr[-2000:]
    assert "did not complete within 3 s" in text and "Traceback" not in text
    assert not (tmp_path / "out" / "package").exists()


def test_nproc_beyond_the_machine_is_refused(recipe_file: Path) -> None:
    result = run_cli("train", str(recipe_file), "--nproc", "4096")
    text = " ".join(result.stderr.split())
    assert result.returncode == 2
    assert "--nproc 4096 is more than the" in text and "core" in text
