"""Monitoring audio: readable drift features, and a report on noisy recordings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from scaledl.data.audio_io import encode_wav
from scaledl.package import open_package
from tests.audio.conftest import tone
from tests.conftest import run_cli


def test_drift_features_are_readable() -> None:
    from scaledl.contract import AudioSpec
    from scaledl.contract.preprocessing import LogMel
    from scaledl.modalities import modality

    spec = AudioSpec(
        raw_shape=[8000],
        sample_rate=8000,
        logmel=LogMel(
            n_fft=256,
            win_length=200,
            hop_length=80,
            n_mels=40,
            f_min=20,
            f_max=4000,
            log_floor=1e-6,
        ),
        mean=[-8.0] * 40,
        std=[3.0] * 40,
        max_input_seconds=10,
    )
    unit = modality("audio")
    names = unit.drift_feature_names(spec)
    assert names is not None and names[:3] == ["loudness_db", "peak_db", "noise_floor_db"]
    clip = np.zeros((1, 8000), np.float32)
    clip[0, 2000:6000] = tone(1000, 8000, 0.5, amplitude=0.1)
    features = dict(zip(names, unit.drift_features(spec, clip)[0], strict=True))
    assert abs(features["loudness_db"] - 10 * np.log10(0.1**2 / 2)) < 0.1  # of the recording
    assert abs(features["speech_s"] - 0.5) < 0.05 and abs(features["silence_share"] - 0.5) < 0.05
    assert abs(features["centroid_khz"] - 1.0) < 0.05
    assert features["noise_floor_db"] == -100.0  # the padding is digital silence
    loud = max((n for n in names if n.startswith("band_")), key=lambda n: features[n])
    lo, hi = (float(v.removesuffix("hz")) for v in loud.split("_")[1:3])
    assert lo <= 1000 <= hi
    noisy = clip + np.random.default_rng(0).normal(0, 0.01, clip.shape).astype(np.float32)
    again = dict(zip(names, unit.drift_features(spec, noisy)[0], strict=True))
    assert again["noise_floor_db"] > -45 and again["silence_share"] < 0.1


def _write_folder(root: Path, x: np.ndarray, y: np.ndarray) -> None:
    for i, (clip, label) in enumerate(zip(x, y, strict=True)):
        folder = root / str(int(label))
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"clip_{i}.wav").write_bytes(encode_wav(clip, 8000))


def test_report_on_noisy_recordings(audio_package: Path, tmp_path: Path) -> None:
    from scaledl.monitor.datasets import load_new_data

    held_out = load_new_data(open_package(audio_package), None)
    rng = np.random.default_rng(0)
    x = held_out.x
    power = (x**2).sum(axis=1) / np.maximum((x != 0).sum(axis=1), 1)
    noise = rng.normal(size=x.shape) * np.sqrt(power / 10.0)[:, None]  # 10 dB SNR
    _write_folder(tmp_path / "noisy", np.clip(x + noise, -1, 1), held_out.y)
    out = tmp_path / "report.html"
    result = run_cli(
        "monitor",
        "report",
        str(audio_package),
        "--data",
        str(tmp_path / "noisy"),
        "--out",
        str(out),
        "--json",
        str(tmp_path / "r.json"),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "drift found" in result.stdout
    body = json.loads((tmp_path / "r.json").read_text())
    assert body["degraded"] and body["samples"] == len(x)
    page = out.read_text()
    assert "Input features: reference vs new data" in page and "noise_floor_db" in page
