"""Audio bytes → mono float32 waveforms at a chosen rate and length.

WAV (PCM 8/16/24/32-bit, IEEE float 32/64, WAVE_FORMAT_EXTENSIBLE) is parsed here, in numpy,
with every size checked against the bytes actually present: it is what the server decodes from
untrusted uploads, so no C parser sees them. FLAC and OGG files in data folders go through
`soundfile` (libsndfile). Resampling is polyphase with a proper anti-aliasing filter
(`scipy.signal.resample_poly`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np

from scaledl.errors import DataError, PayloadTooLargeError

WAV_SUFFIXES = {".wav", ".wave"}
LIBSNDFILE_SUFFIXES = {".flac", ".ogg", ".oga"}
AUDIO_SUFFIXES = WAV_SUFFIXES | LIBSNDFILE_SUFFIXES
MAX_CHANNELS = 32
MIN_RATE, MAX_RATE = 1000, 384_000
_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE


@dataclass
class Audio:
    """Decoded samples (frames, channels) as float32 in [-1, 1], and their rate."""

    samples: np.ndarray
    rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate


@dataclass
class WavFormat:
    code: int
    channels: int
    rate: int
    bits: int
    block_align: int


def decode_wav(data: bytes, name: str = "the WAV data", max_seconds: float | None = None) -> Audio:
    """Parse a RIFF/WAVE file; DataError naming `name` for anything malformed, and
    PayloadTooLargeError when it holds more than `max_seconds` of audio (checked before any
    sample is converted)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise DataError(f"{name} is not a WAV file (no RIFF/WAVE header)")
    fmt: WavFormat | None = None
    payload: memoryview | None = None
    view = memoryview(data)
    pos = 12
    while pos + 8 <= len(data):
        chunk_id = bytes(view[pos : pos + 4])
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body = view[pos + 8 : pos + 8 + size]
        if chunk_id == b"fmt ":
            fmt = _parse_format(bytes(body), name)
        elif chunk_id == b"data":
            payload = body  # a data chunk cut short (streamed writers) keeps what is there
            break
        pos += 8 + size + (size & 1)
    if fmt is None:
        raise DataError(f"{name} is not a readable WAV file (no fmt chunk before the data)")
    if payload is None:
        raise DataError(f"{name} is not a readable WAV file (no data chunk)")
    frames = len(payload) // fmt.block_align
    if max_seconds is not None and frames > max_seconds * fmt.rate:
        raise PayloadTooLargeError(
            f"{name} holds {frames / fmt.rate:.1f} s of audio; at most {max_seconds:g} s accepted"
        )
    if frames == 0:
        raise DataError(f"{name} holds no audio samples")
    samples = _convert(payload[: frames * fmt.block_align], fmt)
    return Audio(samples.reshape(frames, fmt.channels), fmt.rate)


def _parse_format(body: bytes, name: str) -> WavFormat:
    if len(body) < 16:
        raise DataError(f"{name}: the WAV fmt chunk is truncated")
    code, channels, rate, _, block_align, bits = struct.unpack_from("<HHIIHH", body)
    if code == _EXTENSIBLE:
        if len(body) < 40:
            raise DataError(f"{name}: the WAV extensible fmt chunk is truncated")
        (code,) = struct.unpack_from("<H", body, 24)  # the sub-format GUID's first two bytes
    if code not in (_PCM, _FLOAT):
        raise DataError(
            f"{name}: WAV encoding {code} is not supported; valid: PCM (1) or IEEE float (3)"
        )
    valid_bits = (8, 16, 24, 32) if code == _PCM else (32, 64)
    if bits not in valid_bits:
        kind = "PCM" if code == _PCM else "float"
        raise DataError(f"{name}: {bits}-bit {kind} WAV is not supported; valid: {valid_bits}")
    if not 1 <= channels <= MAX_CHANNELS:
        raise DataError(f"{name}: {channels} channels; valid: 1–{MAX_CHANNELS}")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise DataError(f"{name}: sample rate {rate} Hz; valid: {MIN_RATE}–{MAX_RATE} Hz")
    if block_align != channels * bits // 8:
        raise DataError(
            f"{name}: block align {block_align} does not match {channels} × {bits}-bit samples"
        )
    return WavFormat(code, channels, rate, bits, block_align)


def _convert(raw: memoryview, fmt: WavFormat) -> np.ndarray:
    """Little-endian samples → float32 in [-1, 1] (float files are clipped to that range)."""
    if fmt.code == _FLOAT:
        values = np.frombuffer(raw, dtype="<f4" if fmt.bits == 32 else "<f8")
        if not np.isfinite(values).all():
            raise DataError("the WAV data holds NaN or Inf samples")
        return np.clip(values, -1.0, 1.0).astype(np.float32)
    if fmt.bits == 8:  # unsigned, centred on 128
        return (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    if fmt.bits == 24:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        ints = (b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8  # sign-extend
        return ints.astype(np.float32) / float(1 << 23)
    dtype, full = ("<i2", 1 << 15) if fmt.bits == 16 else ("<i4", 1 << 31)
    return (np.frombuffer(raw, dtype=dtype).astype(np.float64) / full).astype(np.float32)


def read_audio_file(path: Path) -> Audio:
    """A WAV, FLAC or OGG file; DataError naming the file when it is not readable audio."""
    suffix = path.suffix.lower()
    if suffix in WAV_SUFFIXES:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DataError(f"audio file {path} is unreadable ({exc})") from None
        return decode_wav(data, name=f"audio file {path}")
    try:
        import soundfile
    except ImportError:  # pragma: no cover - soundfile is a dependency
        raise DataError(
            f"audio file {path}: reading {suffix} needs `pip install soundfile`"
        ) from None
    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, OSError, ValueError, TypeError) as exc:
        raise DataError(f"audio file {path} is unreadable or corrupt ({exc})") from None
    if len(samples) == 0:
        raise DataError(f"audio file {path} holds no audio samples")
    return Audio(np.asarray(samples, dtype=np.float32), int(rate))


def to_mono(samples: np.ndarray) -> np.ndarray:
    """(frames, channels) → (frames,): the channels' mean."""
    return samples[:, 0] if samples.shape[1] == 1 else samples.mean(axis=1, dtype=np.float32)


def resample(x: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Polyphase resampling with scipy's Kaiser-windowed anti-aliasing filter."""
    if rate == target:
        return x.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    g = gcd(rate, target)
    return np.asarray(resample_poly(x, target // g, rate // g), dtype=np.float32)


def fit_length(x: np.ndarray, samples: int) -> np.ndarray:
    """Pad with silence or crop to `samples`, keeping the clip centred."""
    n = len(x)
    if n == samples:
        return x
    if n > samples:
        start = (n - samples) // 2
        return x[start : start + samples]
    out = np.zeros(samples, dtype=np.float32)
    start = (samples - n) // 2
    out[start : start + n] = x
    return out


def prepare(audio: Audio, rate: int, samples: int) -> np.ndarray:
    """Decoded audio → one fixed-length mono waveform at `rate`."""
    return fit_length(resample(to_mono(audio.samples), audio.rate, rate), samples)


def encode_wav(x: np.ndarray, rate: int) -> bytes:
    """Mono or (frames, channels) float samples → a 16-bit PCM WAV file (for clients and tests)."""
    arr = np.asarray(x, dtype=np.float64)
    arr = arr[:, None] if arr.ndim == 1 else arr
    ints = np.round(np.clip(arr, -1.0, 1.0) * 32767.0).astype("<i2")
    channels = arr.shape[1]
    data = ints.tobytes()
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + len(data),
        b"WAVE",
        b"fmt ",
        16,
        _PCM,
        channels,
        rate,
        rate * channels * 2,
        channels * 2,
        16,
        b"data",
        len(data),
    )
    return header + data
