"""Audio: fixed-length mono waveforms in [-1, 1]; the log-mel front-end lives in the graph.

Sources: audio folders (one sub-folder per class, WAV/FLAC/OGG), claimed before the image
folder reader, and `.npz` arrays with `data.kind: audio` (x: (N, samples)). The graph takes the
raw waveform batch (N, samples) float32 at the spec's sample rate, so training, evaluation and
serving compute the same features by construction. `/predict` accepts WAV uploads (resampled
to the model's rate, centred and padded or cropped like the training clips).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from scaledl.contract import AudioSpec, SpecBase
from scaledl.contract.preprocessing import LogMel
from scaledl.data.config import AudioConfig, DataConfig
from scaledl.data.dataset import DataSplits, LoadedData
from scaledl.errors import DataError
from scaledl.modalities.base import BatchTransform, BodyLimits, Modality

WAV_TYPES = ("audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave")
STATS_BATCH = 256


class AudioModality(Modality):
    kind: ClassVar[str] = "audio"
    spec_type: ClassVar[type[AudioSpec]] = AudioSpec

    # ---- data ---------------------------------------------------------------------------
    def claims(self, path: Path, config: DataConfig) -> bool:
        from scaledl.data.audio import looks_like_audio_folder

        return path.is_dir() and (config.kind == "audio" or looks_like_audio_folder(path))

    def read(self, path: Path, config: DataConfig, task: str) -> LoadedData:
        from scaledl.data.audio import read_audio_folder

        return read_audio_folder(path, config, task)

    # ---- preprocessing ------------------------------------------------------------------
    def fit(self, splits: DataSplits) -> AudioSpec:
        """The front-end's settings and each mel band's mean and std over the training split."""
        from scaledl.data.audio import target_rate

        settings = splits_settings(splits)
        x = splits.train.x
        if x.ndim != 2:
            raise DataError(f"audio samples must be waveforms (N, samples); got {x.shape}")
        rate = target_rate(settings)
        logmel = logmel_settings(settings, rate)
        mean, std = band_statistics(x, logmel, rate)
        duration = x.shape[1] / rate
        max_seconds = settings.max_input_seconds or max(10.0, 4.0 * duration)
        return AudioSpec(
            raw_shape=[int(x.shape[1])],
            sample_rate=rate,
            logmel=logmel,
            mean=[float(v) for v in mean],
            std=[float(v) for v in std],
            frames_per_token=settings.frames_per_token,
            pool_segments=settings.pool_segments,
            max_input_seconds=max_seconds,
        )

    def to_graph(self, spec: AudioSpec, raw: Any) -> np.ndarray:
        self.check_raw(spec, raw)
        x = np.ascontiguousarray(raw, dtype=np.float32)
        if not np.isfinite(x).all():
            raise DataError("waveforms contain NaN or Inf samples")
        return x

    def batch_transform(self, spec: AudioSpec) -> BatchTransform:
        return Waveforms()

    # ---- serving ------------------------------------------------------------------------
    body_types: ClassVar[tuple[str, ...]] = WAV_TYPES  # what /predict decodes besides JSON

    def rows_from_body(
        self, spec: SpecBase, body: bytes, media_type: str, limits: BodyLimits
    ) -> np.ndarray:
        """A WAV upload → one raw row: mono, at the model's rate, centred to its length. Too
        long a recording is refused (413) from the header, before any sample is converted."""
        from scaledl.data.audio_io import decode_wav, prepare

        assert isinstance(spec, AudioSpec)
        audio = decode_wav(body, "the uploaded WAV", max_seconds=spec.max_input_seconds)
        return prepare(audio, spec.sample_rate, spec.samples)[None]

    # ---- model --------------------------------------------------------------------------
    def frontend(self, spec: AudioSpec, family: str) -> dict[str, Any]:
        from scaledl.modalities.audio.frontend import LAYOUTS

        return {
            "kind": self.kind,
            "layout": LAYOUTS.get(family, "frames"),
            "sample_rate": spec.sample_rate,
            "samples": spec.samples,
            **spec.logmel.model_dump(),
            "mean": list(spec.mean),
            "std": list(spec.std),
            "frames_per_token": spec.frames_per_token,
            "pool_segments": spec.pool_segments,
        }

    def build_frontend(self, config: dict[str, Any]) -> tuple[Any, tuple[int, ...]]:
        from scaledl.modalities.audio.frontend import build

        return build(config)

    # ---- monitoring ---------------------------------------------------------------------
    def drift_features(self, spec: AudioSpec, graph_x: np.ndarray) -> np.ndarray:
        from scaledl.modalities.audio.drift import drift_features

        return drift_features(spec, graph_x)

    def drift_feature_names(self, spec: AudioSpec) -> list[str]:
        from scaledl.modalities.audio.drift import feature_names

        return feature_names(spec)


class Waveforms(BatchTransform):
    """Training's view: the waveform is both the augmentation space and the graph input."""

    def __init__(self) -> None:
        import torch

        self.device = torch.device("cpu")

    def to(self, device: Any) -> Waveforms:
        import torch

        self.device = torch.device(device)
        return self

    def load(self, raw: np.ndarray) -> Any:
        import torch

        t = torch.from_numpy(np.ascontiguousarray(raw, dtype=np.float32))
        return t if self.device.type == "cpu" else t.to(self.device, non_blocking=True)


def splits_settings(splits: DataSplits) -> AudioConfig:
    """The `data.audio` settings the splits were read with (defaults for in-memory arrays)."""
    return splits.config.audio if splits.config is not None else AudioConfig()


def logmel_settings(settings: AudioConfig, rate: int) -> LogMel:
    win = max(16, round(settings.window_ms * rate / 1000))
    hop = max(1, round(settings.hop_ms * rate / 1000))
    n_fft = 1 << (win - 1).bit_length()  # the next power of two
    f_max = min(settings.f_max or rate / 2, rate / 2)
    return LogMel(
        n_fft=n_fft,
        win_length=win,
        hop_length=hop,
        n_mels=settings.n_mels,
        f_min=settings.f_min,
        f_max=f_max,
        log_floor=settings.log_floor,
    )


def band_statistics(x: np.ndarray, logmel: LogMel, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Each mel band's mean and std of the log-mel over every frame of every training clip."""
    import torch

    from scaledl.modalities.audio.frontend import LogMel as LogMelModule

    n_mels = logmel.n_mels
    module = LogMelModule(
        {**logmel.model_dump(), "sample_rate": rate, "mean": [0.0] * n_mels, "std": [1.0] * n_mels}
    )
    total = np.zeros(n_mels)
    squares = np.zeros(n_mels)
    count = 0
    with torch.no_grad():
        for i in range(0, len(x), STATS_BATCH):
            f = module.log(torch.from_numpy(np.ascontiguousarray(x[i : i + STATS_BATCH]))).double()
            total += f.sum(dim=(0, 2)).numpy()
            squares += (f * f).sum(dim=(0, 2)).numpy()
            count += f.shape[0] * f.shape[2]
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean * mean, 0.0))
    return mean, np.where(std < 1e-6, 1.0, std)


__all__ = ["AudioModality"]
