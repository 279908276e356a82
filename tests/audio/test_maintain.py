"""`scaledl maintain` on a speech model: noisy recordings are found, fine-tuned on, published."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from scaledl.data.audio_io import encode_wav, read_audio_file
from scaledl.maintain.log import read_log
from tests.audio.conftest import FSDD
from tests.conftest import run_cli
from tests.maintain.conftest import FAST

NEW_PER_CLASS = 8  # recordings per digit in the "new data" folder, taken after the training subset


def noisy_recordings(out: Path, snr_db: float, seed: int = 0) -> Path:
    """FSDD test recordings the model never saw, with white noise at `snr_db`, as WAV folders."""
    rng = np.random.default_rng(seed)
    for class_dir in sorted(p for p in (FSDD / "test").iterdir() if p.is_dir()):
        files = sorted(class_dir.glob("*.wav"))[-NEW_PER_CLASS:]
        (out / class_dir.name).mkdir(parents=True)
        for file in files:
            audio = read_audio_file(file)
            x = audio.samples[:, 0]
            power = float(np.mean(x**2)) or 1e-8
            noise = rng.normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), x.shape)
            (out / class_dir.name / file.name).write_bytes(
                encode_wav((x + noise).astype(np.float32), audio.rate)
            )
    return out


@pytest.mark.e2e
@pytest.mark.slow
def test_maintain_finds_noisy_speech_and_publishes_a_checked_version(
    audio_package: Path, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(audio_package, repo / "fsdd" / "1")
    new = noisy_recordings(tmp_path / "noisy", snr_db=0.0)

    result = run_cli(
        "maintain", str(repo), "-m", "fsdd", "--new-data", str(new), *FAST, timeout=600
    )
    output = result.stdout + result.stderr
    assert result.returncode in (0, 1), output  # 1: measured, and the rule rejected it
    steps = {r["step"]: r for r in read_log(repo / "fsdd" / ".maintain" / "log.jsonl")}
    check = steps["check"]["assessment"]
    assert check["degraded"], check  # 0 dB of noise is not what the model was trained on
    assert check["samples"] == 10 * NEW_PER_CLASS
    assert steps["data"]["rows"]["test"] > 0
    outcome = steps["done"]["outcome"]
    folder = repo / "fsdd" / ("2" if outcome == "promoted" else ".maintain/rejected/2")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["preprocessing"]["kind"] == "audio"
    assert manifest["lineage"]["maintain"]["new_data"].endswith("noisy")
    assert run_cli("verify", str(folder)).returncode == 0
