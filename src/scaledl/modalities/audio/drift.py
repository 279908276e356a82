"""What the monitor watches in audio: features a person can read, one row per clip.

- `loudness_db`: mean power of the recorded part of the clip (the zero padding excluded), dBFS;
- `peak_db`: the largest sample, dBFS;
- `noise_floor_db`: the 10th percentile of 10 ms frame energies, dBFS — lifted by background
  noise (padding frames sit at the −100 dB floor);
- `speech_s`: seconds of frames within 30 dB of the clip's loudest frame;
- `silence_share`: share of frames below −50 dBFS;
- `centroid_khz`: the power-weighted mean frequency;
- `band_<lo>_<hi>hz_db`: the power in eight groups of mel bands, dB — a band-limited
  (telephone) channel empties the outer ones;
- `mel_<k>`: the model's own input, pooled: band k of the normalized log-mel averaged over time.

Computed with numpy (`mel.logmel_numpy`, the same formulas as the graph's front-end), so the
live monitor needs no torch.
"""

from __future__ import annotations

import numpy as np

from scaledl.contract import AudioSpec
from scaledl.modalities.audio.mel import band_edges, mel_filterbank, power_spectrogram

BAND_GROUPS = 8
FLOOR_DB = -100.0
SPEECH_RANGE_DB = 30.0
SILENCE_DB = -50.0


def feature_names(spec: AudioSpec) -> list[str]:
    bands = [f"band_{lo:.0f}_{hi:.0f}hz_db" for lo, hi in _group_edges(spec)]
    mels = [f"mel_{k}" for k in range(spec.logmel.n_mels)]
    scalars = ["loudness_db", "peak_db", "noise_floor_db", "speech_s", "silence_share"]
    return [*scalars, "centroid_khz", *bands, *mels]


def drift_features(spec: AudioSpec, x: np.ndarray) -> np.ndarray:
    """(N, samples) waveforms → (N, len(feature_names(spec))) float32."""
    x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
    lm = spec.logmel
    power = power_spectrogram(x, lm.n_fft, lm.hop_length, lm.win_length)  # (N, frames, bins)
    bank = mel_filterbank(spec.sample_rate, lm.n_fft, lm.n_mels, lm.f_min, lm.f_max)
    mel = np.einsum("mf,ntf->nmt", bank, power)
    logmel = np.log(np.maximum(mel, spec.logmel.log_floor))
    pooled = ((logmel - _col(spec.mean)) / _col(spec.std)).mean(axis=2)
    parts = [
        _level_features(x, spec),
        _centroid(power, spec)[:, None],
        _band_db(mel, spec.logmel.n_mels),
        pooled,
    ]
    return np.concatenate(parts, axis=1).astype(np.float32)


def _db(power: np.ndarray) -> np.ndarray:
    return 10.0 * np.log10(np.maximum(power, 10.0 ** (FLOOR_DB / 10.0)))


def _level_features(x: np.ndarray, spec: AudioSpec) -> np.ndarray:
    squares = x.astype(np.float64) ** 2
    recorded = np.maximum((x != 0).sum(axis=1), 1)
    loudness = _db(squares.sum(axis=1) / recorded)
    peak = _db(np.abs(x).max(axis=1).astype(np.float64) ** 2)
    hop = spec.logmel.hop_length
    usable = (x.shape[1] // hop) * hop
    frame_db = _db(squares[:, :usable].reshape(len(x), -1, hop).mean(axis=2))
    noise_floor = np.percentile(frame_db, 10, axis=1)
    speech_s = (frame_db >= frame_db.max(axis=1, keepdims=True) - SPEECH_RANGE_DB).sum(axis=1)
    silence = (frame_db < SILENCE_DB).mean(axis=1)
    seconds = speech_s * hop / spec.sample_rate
    return np.stack([loudness, peak, noise_floor, seconds, silence], axis=1)


def _centroid(power: np.ndarray, spec: AudioSpec) -> np.ndarray:
    freqs = np.fft.rfftfreq(spec.logmel.n_fft, d=1.0 / spec.sample_rate).astype(np.float32)
    total = power.sum(axis=(1, 2))
    weighted = (power * freqs).sum(axis=(1, 2))
    return np.where(total > 0, weighted / np.maximum(total, 1e-30), 0.0) / 1000.0


def _band_db(mel: np.ndarray, n_mels: int) -> np.ndarray:
    groups = np.array_split(np.arange(n_mels), min(BAND_GROUPS, n_mels))
    energy = np.stack([mel[:, g, :].sum(axis=1).mean(axis=1) for g in groups], axis=1)
    return _db(energy)


def _group_edges(spec: AudioSpec) -> list[tuple[float, float]]:
    edges = band_edges(spec.logmel.n_mels, spec.logmel.f_min, spec.logmel.f_max)
    groups = np.array_split(np.arange(spec.logmel.n_mels), min(BAND_GROUPS, spec.logmel.n_mels))
    return [(float(edges[g[0]]), float(edges[g[-1] + 2])) for g in groups]


def _col(values: list[float]) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)[None, :, None]
