"""Serving an audio package: raw waveforms through an unmodified V2 client, WAV uploads on
/predict (resampled, mixed down), and the bad inputs a client can send."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from scaledl.data.audio_io import encode_wav, resample
from scaledl.package import open_package
from tests.serve.helpers import ServerProcess, copy_package

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def audio_server(audio_package: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    repo = tmp_path_factory.mktemp("audio-repo")
    copy_package(audio_package, repo / "digits-speech" / "1")
    proc = ServerProcess([str(repo), "--no-auth", "--max-queue-delay-ms", "1"])
    try:
        yield proc.wait_ready().url
    finally:
        proc.stop()


def _reference(package: Path, x: np.ndarray) -> np.ndarray:
    from scaledl.monitor.reference import session_predict

    return session_predict(open_package(package))(x)


def _test_clips(package: Path, n: int = 4) -> np.ndarray:
    from scaledl.monitor.datasets import load_new_data

    return load_new_data(open_package(package), None).x[:n]


def test_waveforms_through_tritonclient(audio_server: str, audio_package: Path) -> None:
    httpclient = pytest.importorskip("tritonclient.http")
    client = httpclient.InferenceServerClient(audio_server.removeprefix("http://"))
    meta = client.get_model_metadata("digits-speech")
    assert meta["inputs"][0]["shape"] == [-1, 6400] and meta["inputs"][0]["datatype"] == "FP32"
    x = _test_clips(audio_package)
    tensor = httpclient.InferInput(meta["inputs"][0]["name"], list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    result = client.infer("digits-speech", [tensor])
    out = result.as_numpy(meta["outputs"][0]["name"])
    np.testing.assert_allclose(out, _reference(audio_package, x), atol=1e-5)
    client.close()


def test_wav_upload_is_resampled_and_mixed_down(audio_server: str, audio_package: Path) -> None:
    from scaledl.modalities import BodyLimits, modality_of

    x = _test_clips(audio_package, 1)[0]
    up = resample(x, 8000, 16000)
    body = encode_wav(np.stack([up, up], axis=1), 16000)  # a 16 kHz stereo upload
    url = f"{audio_server}/v2/models/digits-speech/predict"
    response = httpx.post(url, content=body, headers={"Content-Type": "audio/wav"}, timeout=30)
    assert response.status_code == 200, response.text
    prediction = response.json()["predictions"][0]
    spec = open_package(audio_package).preprocessing
    decoded = modality_of(spec).rows_from_body(spec, body, "audio/wav", BodyLimits())
    assert decoded.shape == (1, 6400)
    np.testing.assert_allclose(decoded[0], x, atol=1e-2)  # 16 kHz and back (filters), 16-bit
    expected = _reference(audio_package, decoded)[0]
    probabilities = np.exp(expected - expected.max()) / np.exp(expected - expected.max()).sum()
    labels = open_package(audio_package).labels
    assert labels is not None and prediction["label"] == labels[int(expected.argmax())]
    assert prediction["probability"] == pytest.approx(float(probabilities.max()), abs=1e-4)
    rows = httpx.post(url, json={"instances": [x.tolist()]}, timeout=30)
    assert rows.status_code == 200
    direct = _reference(audio_package, x[None])[0]
    assert rows.json()["predictions"][0]["label"] == labels[int(direct.argmax())]


def test_bad_audio_inputs_are_refused_with_a_reason(audio_server: str) -> None:
    url = f"{audio_server}/v2/models/digits-speech/predict"
    wav = {"Content-Type": "audio/wav"}
    long_clip = encode_wav(np.zeros(8000 * 12), 8000)  # 12 s; the model takes at most 10 s
    cases = [
        (b"RIFF\x00\x00\x00\x00WAVEnothing", wav, 400, "WAV"),
        (b"hello", wav, 400, "not a WAV"),
        (long_clip, wav, 413, "12.0 s"),
        (b"abc", {"Content-Type": "text/plain"}, 415, "audio/wav"),
        (b"[[0.1, 0.2]]", {"Content-Type": "application/json"}, 400, "6400 numbers"),
    ]
    for body, headers, status, words in cases:
        response = httpx.post(url, content=body, headers=headers, timeout=30)
        assert response.status_code == status, (words, response.text)
        assert words in response.json()["error"], response.text
    infer = f"{audio_server}/v2/models/digits-speech/infer"
    doc = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 100], "data": [0] * 100}]}
    response = httpx.post(infer, json=doc, timeout=30)
    assert response.status_code == 400 and "6400" in response.text
    assert httpx.get(f"{audio_server}/v2/health/ready", timeout=10).status_code == 200
