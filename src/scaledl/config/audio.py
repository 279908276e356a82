"""The recipe's `data.audio` section: how audio folders are read, what the log-mel front-end
computes and how long a served input may be.

Clips are mixed down to mono, resampled to `sample_rate` and padded or cropped (centred) to
`duration_s`; random placement in training is the `time_shift` augmentation.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class AudioConfig(BaseModel):
    """`data.audio`: audio folders and the model's log-mel front-end."""

    model_config = ConfigDict(extra="forbid")

    sample_rate: int | None = Field(
        None,
        ge=1000,
        le=384_000,
        description="resample to this rate, Hz (default: the first file's)",
    )
    duration_s: float = Field(1.0, gt=0.0, le=60.0, description="clip length; pad or crop, centred")
    window_ms: float = Field(25.0, gt=0.0, le=500.0, description="STFT window (Hann), ms")
    hop_ms: float = Field(10.0, gt=0.0, le=500.0, description="STFT hop, ms")
    n_mels: int = Field(40, ge=1, le=256, description="mel bands")
    f_min: float = Field(20.0, ge=0.0, description="lowest mel band edge, Hz")
    f_max: float | None = Field(None, gt=0.0, description="highest mel band edge, Hz (Nyquist)")
    log_floor: float = Field(1e-6, gt=0.0, le=1.0, description="power floor before the log")
    frames_per_token: int = Field(4, ge=1, le=64, description="transformer: frames per token")
    pool_segments: int = Field(8, ge=1, le=64, description="mlp: time segments mel bands pool to")
    max_input_seconds: float | None = Field(
        None, gt=0.0, le=3600.0, description="longest input served (default: max(10 s, 4 clips))"
    )

    @model_validator(mode="after")
    def _check(self) -> AudioConfig:
        if self.f_max is not None and self.f_max <= self.f_min:
            raise ValueError(f"f_max {self.f_max} must exceed f_min {self.f_min}")
        return self
