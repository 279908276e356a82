"""The log-mel front-end: against librosa, numpy and torch alike, every layout, ONNX parity."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from scaledl.contract import AudioSpec
from scaledl.contract.preprocessing import LogMel
from scaledl.modalities import modality
from scaledl.modalities.audio.mel import logmel_numpy, mel_filterbank
from scaledl.models import ModelSpec
from tests.audio.conftest import tone

SETTINGS = LogMel(
    n_fft=256, win_length=200, hop_length=80, n_mels=40, f_min=20.0, f_max=4000.0, log_floor=1e-6
)


def _spec(samples: int = 8000, **extra: Any) -> AudioSpec:
    rng = np.random.default_rng(0)
    return AudioSpec(
        raw_shape=[samples],
        sample_rate=8000,
        logmel=SETTINGS,
        mean=list(rng.normal(-8, 1, 40)),
        std=list(rng.uniform(2, 4, 40)),
        max_input_seconds=10.0,
        **extra,
    )


def _waves(n: int = 3, samples: int = 8000) -> np.ndarray:
    rng = np.random.default_rng(1)
    speechy = tone(300, 8000, samples / 8000) + tone(1700, 8000, samples / 8000, 0.2)
    x = speechy[None] * rng.uniform(0.1, 1.0, (n, 1)) + rng.normal(0, 0.01, (n, samples))
    x[0, : samples // 3] = 0.0  # a padded stretch: the log floor
    return np.clip(x, -1, 1).astype(np.float32)


def test_filterbank_and_logmel_match_librosa() -> None:
    librosa = pytest.importorskip("librosa")
    reference = librosa.filters.mel(sr=8000, n_fft=256, n_mels=40, fmin=20.0, fmax=4000.0)
    np.testing.assert_allclose(mel_filterbank(8000, 256, 40, 20.0, 4000.0), reference, atol=1e-6)
    x = _waves()
    power = np.stack(
        [
            librosa.feature.melspectrogram(
                y=row, sr=8000, n_fft=256, hop_length=80, win_length=200, n_mels=40,
                fmin=20.0, fmax=4000.0, power=2.0, center=True, pad_mode="constant",
            )
            for row in x
        ]
    )  # fmt: skip
    expected = np.log(np.maximum(power, SETTINGS.log_floor))
    ours = logmel_numpy(x, SETTINGS, 8000)
    np.testing.assert_allclose(ours, expected, atol=2e-4)
    import torch

    unit = modality("audio")
    front, _ = unit.build_frontend(unit.frontend(_spec(), "cnn"))
    with torch.no_grad():
        graph = front.logmel.log(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(graph, expected, atol=2e-4)


@pytest.mark.parametrize(
    ("family", "shape"),
    [("cnn", (101, 40)), ("rnn", (101, 40)), ("transformer", (25, 160)), ("mlp", (320,))],
)
def test_each_family_reads_its_layout(family: str, shape: tuple[int, ...]) -> None:
    import torch

    spec = _spec()
    unit = modality("audio")
    config = unit.frontend(spec, family)
    front, feature_shape = unit.build_frontend(config)
    assert feature_shape == shape
    x = torch.from_numpy(_waves())
    with torch.no_grad():
        features = front(x)
        normalized = front.logmel(x)
    assert tuple(features.shape[1:]) == shape
    # every layout is a rearrangement (or time average) of the same normalized log-mel
    if family in ("cnn", "rnn"):
        torch.testing.assert_close(features, normalized.transpose(1, 2))
    if family == "transformer":  # token 2 holds frames 8–11, band-major within the frame
        torch.testing.assert_close(features[:, 2, :40], normalized[:, :, 8])
        torch.testing.assert_close(features[:, 2, 120:], normalized[:, :, 11])
    if family == "mlp":  # segment 0 is frames 0–11 averaged
        torch.testing.assert_close(features[:, :40], normalized[:, :, :12].mean(dim=2))
    model = ModelSpec(family, [8000], 10, {}, frontend=config).build()
    assert not any(k.startswith("frontend.") for k in model.state_dict())  # fixed, rebuilt


@pytest.mark.parametrize(
    "family",
    [
        # the cnn's parity is also checked by every packaging (tests/audio/test_families.py)
        pytest.param("cnn", marks=pytest.mark.slow),
        "rnn",
        pytest.param("transformer", marks=pytest.mark.slow),
        pytest.param("mlp", marks=pytest.mark.slow),
    ],
)
def test_onnx_parity_from_raw_waveforms(family: str) -> None:
    import torch

    from scaledl.export.onnx_export import export_onnx, run_onnx

    small = {"cnn": {"channels": [8]}, "rnn": {"hidden": 8}, "mlp": {"hidden": [16]}}
    knobs = small.get(family, {"d_model": 16, "heads": 2, "layers": 1, "ff": 16})
    unit = modality("audio")
    torch.manual_seed(0)
    model = ModelSpec(family, [8000], 10, knobs, frontend=unit.frontend(_spec(), family)).build()
    model.eval()
    x = _waves(4)
    result = export_onnx(model, x)  # refuses a graph off by more than 1e-4
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(run_onnx(result.onnx_bytes, x[:1]), expected[:1], atol=1e-4)
