"""Audio ops: on the waveform (B, samples) — time shift, gain, noise, speed — and on the
front-end's normalized log-mel (B, mels, frames) — SpecAugment's frequency and time masks.

Waveform ops run where image ops run (before the graph input). Feature ops (`stage =
"features"`) run inside the model's front-end during training, between the log-mel and the
family (see `PolicyAugmenter.feature_augment`). Both draw every sample's parameters from the
counter-based generator keyed by (seed, epoch, sample index), so a sample is augmented the
same way whatever batch or rank it lands in.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from scaledl.data.augment.base import AugmentOp, OpRng, Statistics, lerp_range, per_sample, register

AUDIO = ("audio",)


class AudioOp(AugmentOp):
    kinds: ClassVar[tuple[str, ...]] = AUDIO


def active_power(x: Any) -> Any:
    """Mean power of each clip's recorded samples (the exact-zero padding excluded)."""
    recorded = (x != 0).sum(dim=1).clamp(min=1)
    return (x * x).sum(dim=1) / recorded


@register
class TimeShift(AudioOp):
    """Move the clip by up to `max_shift` of its length either way; silence fills the gap."""

    op: Literal["time_shift"] = "time_shift"
    max_shift: float = Field(0.1, gt=0.0, le=0.5, description="largest shift, share of the clip")
    draws: ClassVar[int] = 1

    def transform(self, x: Any, u: Any, rng: OpRng, stats: Statistics | None) -> Any:
        import torch

        n = x.shape[1]
        shift = torch.round((u[:, 0] * 2 - 1) * self.max_shift * n).long()
        source = torch.arange(n, device=x.device)[None, :] - shift[:, None]
        inside = (source >= 0) & (source < n)
        moved = x.gather(1, source.clamp(0, n - 1))
        return torch.where(inside, moved, torch.zeros_like(moved))


@register
class Gain(AudioOp):
    """Scale the clip by a gain drawn uniformly in [low_db, high_db] (clipped to [-1, 1])."""

    op: Literal["gain"] = "gain"
    low_db: float = Field(-6.0, ge=-40.0, le=40.0)
    high_db: float = Field(6.0, ge=-40.0, le=40.0)
    draws: ClassVar[int] = 1

    @model_validator(mode="after")
    def _check(self) -> Gain:
        if self.high_db < self.low_db:
            raise ValueError(f"high_db {self.high_db} is below low_db {self.low_db}")
        return self

    def transform(self, x: Any, u: Any, rng: OpRng, stats: Statistics | None) -> Any:
        gain = 10.0 ** (lerp_range(u[:, 0], self.low_db, self.high_db) / 20.0)
        return (x * per_sample(gain, x)).clamp(-1.0, 1.0)


@register
class Noise(AudioOp):
    """Add white Gaussian noise at an SNR drawn uniformly in [min_snr_db, max_snr_db], against
    the power of the clip's recorded part (its zero padding excluded)."""

    op: Literal["noise"] = "noise"
    min_snr_db: float = Field(5.0, ge=-10.0, le=60.0)
    max_snr_db: float = Field(30.0, ge=-10.0, le=60.0)
    draws: ClassVar[int] = 1

    @model_validator(mode="after")
    def _check(self) -> Noise:
        if self.max_snr_db < self.min_snr_db:
            raise ValueError(f"max_snr_db {self.max_snr_db} is below min_snr_db {self.min_snr_db}")
        return self

    def transform(self, x: Any, u: Any, rng: OpRng, stats: Statistics | None) -> Any:
        snr = lerp_range(u[:, 0], self.min_snr_db, self.max_snr_db)
        sigma = (active_power(x) / 10.0 ** (snr / 10.0)).sqrt()
        noise = rng.normal(int(x.shape[1]), sub=1).reshape(x.shape)
        return (x + noise * per_sample(sigma, x)).clamp(-1.0, 1.0)


@register
class Speed(AudioOp):
    """Play the clip faster or slower by a factor in [low, high] (pitch moves with it), about
    its centre, by linear interpolation."""

    op: Literal["speed"] = "speed"
    low: float = Field(0.9, ge=0.5, le=2.0)
    high: float = Field(1.1, ge=0.5, le=2.0)
    draws: ClassVar[int] = 1

    @model_validator(mode="after")
    def _check(self) -> Speed:
        if self.high < self.low:
            raise ValueError(f"high {self.high} is below low {self.low}")
        return self

    def transform(self, x: Any, u: Any, rng: OpRng, stats: Statistics | None) -> Any:
        import torch

        n = x.shape[1]
        factor = lerp_range(u[:, 0], self.low, self.high).to(x.dtype)
        centre = (n - 1) / 2.0
        t = torch.arange(n, device=x.device, dtype=x.dtype)[None, :]
        where = centre + (t - centre) * factor[:, None]
        left = where.floor()
        frac = where - left
        left_i = left.long()
        inside = (left_i >= 0) & (left_i < n - 1)
        a = x.gather(1, left_i.clamp(0, n - 1))
        b = x.gather(1, (left_i + 1).clamp(0, n - 1))
        return torch.where(inside, a * (1 - frac) + b * frac, torch.zeros_like(a))


class FeatureOp(AudioOp):
    """An op on the normalized log-mel (B, mels, frames), applied inside the front-end."""

    stage: ClassVar[str] = "features"


def _spans(u: Any, count: int, width: int, size: int, device: Any) -> Any:
    """(B, size) mask of `count` spans per sample, each up to `width` long, at random starts."""
    import torch

    pos = torch.arange(size, device=device)[None, :]
    masked = torch.zeros(u.shape[0], size, dtype=torch.bool, device=device)
    for k in range(count):
        span = torch.floor(u[:, 2 * k] * (width + 1)).clamp(max=size)
        start = torch.floor(u[:, 2 * k + 1] * (size - span + 1))
        masked |= (pos >= start[:, None]) & (pos < (start + span)[:, None])
    return masked


@register
class FreqMask(FeatureOp):
    """SpecAugment: zero (the training mean) `count` runs of up to `width` mel bands."""

    op: Literal["spec_freq_mask"] = "spec_freq_mask"
    width: int = Field(8, ge=1, le=128, description="widest run, mel bands")
    count: int = Field(1, ge=1, le=8, description="runs per sample")

    def transform(self, x: Any, u: Any, rng: OpRng, stats: Statistics | None) -> Any:
        draws = rng.uniform(2 * self.count, sub=1)
        mask = _spans(draws, self.count, self.width, x.shape[1], x.device)
        return x.masked_fill(mask[:, :, None], 0.0)


@register
class SpecTimeMask(FeatureOp):
    """SpecAugment: zero (the training mean) `count` runs of up to `width` of the frames."""

    op: Literal["spec_time_mask"] = "spec_time_mask"
    width: float = Field(0.1, gt=0.0, le=0.5, description="longest run, share of the frames")
    count: int = Field(1, ge=1, le=8, description="runs per sample")

    def transform(self, x: Any, u: Any, rng: OpRng, stats: Statistics | None) -> Any:
        frames = x.shape[2]
        draws = rng.uniform(2 * self.count, sub=1)
        mask = _spans(draws, self.count, int(self.width * frames), frames, x.device)
        return x.masked_fill(mask[:, None, :], 0.0)
