"""Reading audio: class folders, WAV variants, mono mix-down, resampling, the cache, bad files."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest

from scaledl.data import DataConfig
from scaledl.data.audio_io import decode_wav, encode_wav, fit_length, resample
from scaledl.errors import DataError, PayloadTooLargeError
from scaledl.modalities import load_data, load_splits
from tests.audio.conftest import PER_CLASS, fsdd_data, tone


def _wav(samples: np.ndarray, rate: int, bits: int = 16, fmt: int = 1) -> bytes:
    """A WAV of (frames, channels) floats as PCM 8/16/24/32-bit or float32 (fmt 3)."""
    x = np.asarray(samples, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    if fmt == 3:
        data = x.astype("<f4").tobytes()
    elif bits == 8:
        data = np.round(x * 127 + 128).astype(np.uint8).tobytes()
    elif bits == 24:
        ints = np.round(x * (2**23 - 1)).astype("<i4")
        data = b"".join(int(v).to_bytes(3, "little", signed=True) for v in ints.ravel())
    else:
        data = np.round(x * (2 ** (bits - 1) - 1)).astype(f"<i{bits // 8}").tobytes()
    channels = x.shape[1]
    align = channels * bits // 8
    header = struct.pack("<HHIIHH", fmt, channels, rate, rate * align, align, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + header
    body += b"LIST" + struct.pack("<I", 3) + b"abc\x00"  # an odd-sized chunk to skip (padded)
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_fsdd_folder_is_read_as_audio_with_its_own_split() -> None:
    loaded = load_data(DataConfig.model_validate(fsdd_data()))
    assert loaded.kind == "audio" and loaded.labels == [str(d) for d in range(10)]
    assert loaded.data.x.shape == (10 * PER_CLASS, 6400) and loaded.data.x.dtype == np.float32
    assert loaded.test is not None and len(loaded.test) == 10 * PER_CLASS
    assert np.abs(loaded.data.x).max() <= 1.0 and np.abs(loaded.data.x).max() > 0.05
    # centred: a clip shorter than 0.8 s is padded with silence on both sides
    first = loaded.data.x[0]
    assert first[0] == 0.0 and first[-1] == 0.0


def test_formats_mono_mixdown_resampling_and_cache(tmp_path: Path) -> None:
    root = tmp_path / "sounds"
    low, high = tone(440, 16000, 0.5), tone(1000, 16000, 0.5)
    variants = {
        "a": [
            _wav(np.stack([low, low], 1), 16000),  # stereo, equal channels
            _wav(low, 16000, bits=24),
            _wav(low, 16000, fmt=3, bits=32),
            _wav(low, 16000, bits=8),
        ],
        "b": [_wav(high, 16000, bits=32), _wav(np.stack([high, -high], 1), 16000)],
    }
    for label, files in variants.items():
        (root / label).mkdir(parents=True)
        for i, data in enumerate(files):
            (root / label / f"{i}.wav").write_bytes(data)
    config = DataConfig.model_validate(
        {"source": str(root), "cache_dir": str(tmp_path / "cache"), "audio": {"sample_rate": 8000}}
    )
    loaded = load_data(config)
    assert loaded.kind == "audio" and loaded.data.x.shape == (6, 8000)
    x = loaded.data.x
    spectrum = np.abs(np.fft.rfft(x[:4, 2000:6000], axis=1))
    assert np.all(spectrum.argmax(axis=1) == 440 * 4000 // 8000)  # 440 Hz survives resampling
    for row in x[:4]:  # every encoding decodes to the same tone (8-bit is coarse)
        np.testing.assert_allclose(row, x[0], atol=0.02)
    assert np.abs(x[5]).max() < 1e-4  # L = −R: the mono mix-down cancels
    assert np.abs(x[4, 2000:6000]).max() == pytest.approx(0.5, abs=0.02)
    cached = list((tmp_path / "cache").glob("audio-*.npz"))
    assert len(cached) == 1
    np.testing.assert_array_equal(load_data(config).data.x, x)  # read back from the cache
    os.utime(root / "a" / "0.wav", ns=(1, 1))  # a changed file is a new cache key
    load_data(config)
    assert len(list((tmp_path / "cache").glob("audio-*.npz"))) == 2


def test_soundfile_formats_in_folders(tmp_path: Path) -> None:
    soundfile = pytest.importorskip("soundfile")
    for label, freq in (("lo", 300.0), ("hi", 1200.0)):
        (tmp_path / label).mkdir()
        soundfile.write(str(tmp_path / label / "x.flac"), tone(freq, 8000, 0.3), 8000)
    config = DataConfig.model_validate({"source": str(tmp_path), "audio": {"sample_rate": 8000}})
    loaded = load_data(config)
    assert loaded.data.x.shape == (2, 8000)
    peak = np.abs(np.fft.rfft(loaded.data.x[:, 3000:5000], axis=1)).argmax(axis=1)
    assert list(peak) == [1200 * 2000 // 8000, 300 * 2000 // 8000]  # classes "hi", "lo"


def test_corrupt_and_non_audio_files_are_named(tmp_path: Path) -> None:
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        (tmp_path / label / "ok.wav").write_bytes(_wav(tone(300, 8000, 0.2), 8000))
    (tmp_path / "b" / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunk")
    config = DataConfig.model_validate({"source": str(tmp_path), "audio": {"sample_rate": 8000}})
    with pytest.raises(DataError, match=r"broken\.wav"):
        load_data(config)
    (tmp_path / "b" / "broken.wav").write_bytes(b"\x89PNG\r\n\x1a\n not a sound")
    with pytest.raises(DataError, match=r"broken\.wav.*not a WAV"):
        load_data(config)


def test_hostile_wav_bytes() -> None:
    good = _wav(tone(300, 8000, 0.5), 8000)
    assert decode_wav(good).samples.shape == (4000, 1)
    cases = {
        b"": "not a WAV",
        good[:30]: "truncated",
        good.replace(b"fmt ", b"fmx "): "no fmt chunk",
        good.replace(b"data", b"dat_"): "no data chunk",
        good[:20] + struct.pack("<H", 85) + good[22:]: "encoding 85",
        good[:22] + struct.pack("<H", 0) + good[24:]: "0 channels",
        good[:24] + struct.pack("<I", 10) + good[28:]: "sample rate 10",
        good[:32] + struct.pack("<H", 7) + good[34:]: "block align",
    }
    for data, words in cases.items():
        with pytest.raises(DataError, match=words):
            decode_wav(data)
    with pytest.raises(PayloadTooLargeError, match=r"at most 0\.25 s"):
        decode_wav(good, max_seconds=0.25)
    nan = _wav(np.full(100, np.nan), 8000, fmt=3, bits=32)
    with pytest.raises(DataError, match="NaN"):
        decode_wav(nan)
    # a data chunk that claims more bytes than the file holds keeps what is there
    cut = good[: len(good) - 1000]
    assert decode_wav(cut).samples.shape == (3500, 1)


def test_resample_and_fit_length() -> None:
    x = tone(200, 44100, 1.0)
    y = resample(x, 44100, 8000)
    assert len(y) == 8000 and np.abs(np.fft.rfft(y)).argmax() == 200
    alias = resample(tone(6000, 44100, 1.0), 44100, 8000)  # above the new Nyquist: filtered out
    assert np.abs(alias[500:-500]).max() < 0.01  # (the abrupt start and end ring a little)
    assert list(fit_length(np.arange(1, 5, dtype=np.float32), 8)) == [0, 0, 1, 2, 3, 4, 0, 0]
    assert list(fit_length(np.arange(10, dtype=np.float32), 4)) == [3, 4, 5, 6]
    assert encode_wav(np.zeros(10), 8000)[:4] == b"RIFF"


def test_audio_folders_are_claimed_before_image_folders(tmp_path: Path) -> None:
    splits = load_splits(DataConfig.model_validate(fsdd_data()), seed=0)
    assert splits.kind == "audio" and splits.config is not None
    assert splits.config.audio.sample_rate == 8000
    (tmp_path / "x").mkdir()
    with pytest.raises(DataError, match="no audio"):
        load_data(DataConfig.model_validate({"source": str(tmp_path), "kind": "audio"}))
