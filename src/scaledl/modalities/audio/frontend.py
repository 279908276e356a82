"""The audio front-end inside the graph: raw waveform → normalized log-mel → a family's layout.

The STFT is a strided 1-D convolution whose fixed weights are the windowed DFT basis (it
exports to every ONNX opset and runs as one Conv in ONNX Runtime), followed by the power, the
mel filterbank (a MatMul), a floored log and per-band normalization with the training split's
statistics. All of these are non-persistent buffers rebuilt from `model.json`, so the package's
weights hold only what was learned, and pruning or quantization never touch the features.

Feature-level augmentation (SpecAugment's masks) runs between the normalized log-mel and the
layout, through `forward(x, feature_augment=fn)`; export and inference never pass it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from scaledl.modalities.audio.mel import dft_basis, mel_filterbank

FeatureAugment = Callable[[torch.Tensor], torch.Tensor]
# How each family reads the (mel bands × frames) features.
LAYOUTS = {"cnn": "frames", "rnn": "frames", "transformer": "tokens", "mlp": "pooled"}


class LogMel(nn.Module):
    """(N, samples) → (N, n_mels, frames), normalized per band."""

    basis: torch.Tensor
    bank: torch.Tensor
    mean: torch.Tensor
    inv_std: torch.Tensor

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        n_fft, hop = int(config["n_fft"]), int(config["hop_length"])
        self.n_fft, self.hop = n_fft, hop
        self.bins = n_fft // 2 + 1
        self.floor = float(config["log_floor"])
        basis = dft_basis(int(config["win_length"]), n_fft)[:, None, :]
        bank = mel_filterbank(
            int(config["sample_rate"]),
            n_fft,
            int(config["n_mels"]),
            config["f_min"],
            config["f_max"],
        )
        mean = np.asarray(config["mean"], dtype=np.float32)[:, None]
        std = np.asarray(config["std"], dtype=np.float32)[:, None]
        self.register_buffer("basis", torch.from_numpy(basis), persistent=False)
        self.register_buffer("bank", torch.from_numpy(bank), persistent=False)
        self.register_buffer("mean", torch.from_numpy(mean), persistent=False)
        self.register_buffer("inv_std", torch.from_numpy(1.0 / std), persistent=False)

    def power(self, x: torch.Tensor) -> torch.Tensor:
        """(N, samples) → (N, n_mels, frames) mel power."""
        half = self.n_fft // 2
        frames = torch.nn.functional.conv1d(
            torch.nn.functional.pad(x.unsqueeze(1), (half, half)), self.basis, stride=self.hop
        )
        re, im = frames[:, : self.bins], frames[:, self.bins :]
        return torch.matmul(self.bank, re * re + im * im)

    def log(self, x: torch.Tensor) -> torch.Tensor:
        """Un-normalized natural-log mel power (what the statistics are measured on)."""
        return torch.log(torch.clamp(self.power(x), min=self.floor))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.log(x) - self.mean) * self.inv_std


class AudioFrontEnd(nn.Module):
    """Log-mel features, then the layout the family reads:

    - `frames` (cnn, rnn): (frames, n_mels): one step per frame, one channel per band;
    - `tokens` (transformer): (frames // p, p · n_mels), p consecutive frames per token;
    - `pooled` (mlp): (segments · n_mels,), the bands averaged over equal time segments.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.logmel = LogMel(config)
        self.layout = str(config["layout"])
        if self.layout not in LAYOUTS.values():
            raise ValueError(
                f"unknown audio layout {self.layout!r}; valid: {sorted(LAYOUTS.values())}"
            )
        self.n_mels = int(config["n_mels"])
        self.frames = 1 + int(config["samples"]) // self.logmel.hop
        self.group = int(config["frames_per_token"] if self.layout == "tokens" else 1)
        self.segments = int(config["pool_segments"])
        if self.layout == "tokens" and self.frames < self.group:
            raise ValueError(f"{self.frames} frames cannot make tokens of {self.group} frames")
        if self.layout == "pooled" and self.frames < self.segments:
            raise ValueError(f"{self.frames} frames cannot pool into {self.segments} segments")

    def feature_shape(self) -> tuple[int, ...]:
        m, t = self.n_mels, self.frames
        if self.layout == "frames":
            return (t, m)
        if self.layout == "tokens":
            return (t // self.group, self.group * m)
        return (self.segments * m,)

    def forward(
        self, x: torch.Tensor, feature_augment: FeatureAugment | None = None
    ) -> torch.Tensor:
        features = self.logmel(x)
        if feature_augment is not None:
            features = feature_augment(features)
        return self.arrange(features)

    def arrange(self, f: torch.Tensor) -> torch.Tensor:
        """(N, n_mels, frames) → the family's layout."""
        n, m = f.shape[0], self.n_mels
        if self.layout == "frames":
            return f.transpose(1, 2)
        if self.layout == "tokens":
            tokens = self.frames // self.group
            f = f[:, :, : tokens * self.group].reshape(n, m, tokens, self.group)
            return f.permute(0, 2, 3, 1).reshape(n, tokens, self.group * m)
        span = self.frames // self.segments
        f = f[:, :, : self.segments * span].reshape(n, m, self.segments, span)
        return f.mean(dim=3).transpose(1, 2).reshape(n, self.segments * m)


def build(config: dict[str, Any]) -> tuple[AudioFrontEnd, tuple[int, ...]]:
    module = AudioFrontEnd(config)
    return module, module.feature_shape()
