"""The log-mel recipe as numbers: Hann window, DFT basis, Slaney mel filterbank (numpy).

The torch front-end (`frontend.py`) takes its fixed weights from here, and the monitor's
numpy path (`logmel_numpy`) computes the same features without torch. The formulas follow the
usual definitions (librosa's defaults: centred frames with zero padding, a periodic Hann window,
Slaney's mel scale and area normalization), and the tests check them against librosa.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_F_SP = 200.0 / 3.0  # Slaney: linear below 1 kHz at 3 mels per 200 Hz …
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOG_STEP = np.log(6.4) / 27.0  # … logarithmic above


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    linear = f / _F_SP
    log_part = _MIN_LOG_MEL + np.log(np.maximum(f, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOG_STEP
    return np.where(f >= _MIN_LOG_HZ, log_part, linear)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    linear = m * _F_SP
    log_part = _MIN_LOG_HZ * np.exp(_LOG_STEP * (m - _MIN_LOG_MEL))
    return np.where(m >= _MIN_LOG_MEL, log_part, linear)


def band_edges(n_mels: int, f_min: float, f_max: float) -> np.ndarray:
    """n_mels + 2 frequencies (Hz), equally spaced in mels: each band's lower, centre, upper."""
    return mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))


def mel_filterbank(rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters, each normalized to unit area (Slaney)."""
    bins = np.fft.rfftfreq(n_fft, d=1.0 / rate)
    edges = band_edges(n_mels, f_min, f_max)
    widths = np.diff(edges)
    ramps = edges[:, None] - bins[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


def hann_window(win_length: int, n_fft: int) -> np.ndarray:
    """Periodic Hann window of `win_length`, zero-padded (centred) to `n_fft`."""
    n = np.arange(win_length)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / win_length)
    left = (n_fft - win_length) // 2
    out = np.zeros(n_fft)
    out[left : left + win_length] = window
    return out


def dft_basis(win_length: int, n_fft: int) -> np.ndarray:
    """(2·(n_fft//2 + 1), n_fft): windowed cosines then windowed negative sines, so that a
    frame's dot products with the rows are the real and imaginary parts of its DFT."""
    bins = n_fft // 2 + 1
    k = np.arange(bins)[:, None]
    n = np.arange(n_fft)[None, :]
    angle = 2.0 * np.pi * ((k * n) % n_fft) / n_fft  # exact phase before the trig functions
    window = hann_window(win_length, n_fft)[None, :]
    return np.concatenate([np.cos(angle) * window, -np.sin(angle) * window]).astype(np.float32)


def power_spectrogram(x: np.ndarray, n_fft: int, hop: int, win_length: int) -> np.ndarray:
    """(N, samples) → (N, frames, n_fft // 2 + 1) power of centred, zero-padded frames."""
    x = np.asarray(x, dtype=np.float32)
    padded = np.pad(x, ((0, 0), (n_fft // 2, n_fft // 2)))
    frames = 1 + (padded.shape[1] - n_fft) // hop
    view = np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=1)[:, ::hop][:, :frames]
    spectrum = np.fft.rfft(view * hann_window(win_length, n_fft).astype(np.float32), axis=-1)
    return (spectrum.real**2 + spectrum.imag**2).astype(np.float32)


def logmel_numpy(x: np.ndarray, logmel: Any, rate: int) -> np.ndarray:
    """(N, samples) waveforms → (N, n_mels, frames) natural-log mel power, un-normalized."""
    power = power_spectrogram(x, logmel.n_fft, logmel.hop_length, logmel.win_length)
    bank = mel_filterbank(rate, logmel.n_fft, logmel.n_mels, logmel.f_min, logmel.f_max)
    mel = np.einsum("mf,ntf->nmt", bank, power)
    return np.log(np.maximum(mel, logmel.log_floor)).astype(np.float32)
