"""Ops for tables (B, F) and sequences (B, T, F): jitter, scaling, feature dropout, time ops.

Strengths are relative to the training split's per-feature statistics (bound by the trainer),
so a recipe means the same thing whatever the units of the columns.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from scaledl.data.augment.base import AugmentOp, OpRng, Statistics, register

SERIES = ("table", "sequence")


def _stats(stats: Statistics | None, op: str) -> Statistics:
    if stats is None:
        from scaledl.errors import DataError

        raise DataError(
            f"augmentation {op!r} needs the training statistics: call augmenter.bind(...) "
            "with the training split first (the trainer does this)"
        )
    return stats


class SeriesOp(AugmentOp):
    kinds: ClassVar[tuple[str, ...]] = SERIES
    needs_stats: ClassVar[bool] = True


@register
class Jitter(SeriesOp):
    """Add Gaussian noise of `sigma` training standard deviations to every value."""

    op: Literal["jitter"] = "jitter"
    sigma: float = Field(0.05, gt=0.0, le=2.0, description="noise, in feature std units")

    def transform(self, x: Any, u: Any, rng: OpRng, stats: Statistics | None) -> Any:
        st = _stats(stats, self.op)
        noise = rng.normal(int(x[0].numel()), sub=1).reshape(x.shape)
        return x + noise * self.sigma * st.std


@register
class Scaling(SeriesOp):
    """Scale each feature's deviation from its training mean by 1 + sigma·N(0, 1)."""

    op: Literal["scaling"] = "scaling"
    sigma: float = Field(0.1, gt=0.0, le=1.0, description="spread of the scale factor")

    def transform(self, x: Any, u: Any, rng: OpRng, stats: Statistics | None) -> Any:
        st = _stats(stats, self.op)
        features = x.shape[-1]
        factor = 1.0 + self.sigma * rng.normal(features, sub=1)
        factor = factor.reshape(len(x), *([1] * (x.dim() - 2)), features)
        return st.mean + (x - st.mean) * factor


@register
class FeatureDropout(SeriesOp):
    """Replace each feature (a whole channel for sequences) by its training mean with `rate`."""

    op: Literal["feature_dropout"] = "feature_dropout"
    rate: float = Field(0.1, gt=0.0, lt=1.0, description="share of features dropped")

    def transform(self, x: Any, u: Any, rng: OpRng, stats: Statistics | None) -> Any:
        st = _stats(stats, self.op)
        features = x.shape[-1]
        drop = rng.uniform(features, sub=1) < self.rate
        drop = drop.reshape(len(x), *([1] * (x.dim() - 2)), features)
        return x.where(~drop, st.mean.expand_as(x))


@register
class TimeMask(SeriesOp):
    """Replace `count` random spans of up to `width`·T steps by the training mean."""

    op: Literal["time_mask"] = "time_mask"
    width: float = Field(0.1, gt=0.0, le=1.0, description="longest span, share of the steps")
    count: int = Field(1, ge=1, le=8, description="spans per sample")
    kinds: ClassVar[tuple[str, ...]] = ("sequence",)

    def transform(self, x: Any, u: Any, rng: OpRng, stats: Statistics | None) -> Any:
        import torch

        st = _stats(stats, self.op)
        steps = x.shape[1]
        draws = rng.uniform(2 * self.count, sub=1)
        t = torch.arange(steps, device=x.device, dtype=x.dtype)[None, :]
        masked = torch.zeros(len(x), steps, dtype=torch.bool, device=x.device)
        for k in range(self.count):
            span = torch.floor(draws[:, 2 * k] * (self.width * steps + 1)).clamp(max=steps)
            start = torch.floor(draws[:, 2 * k + 1] * (steps - span + 1))
            masked |= (t >= start[:, None]) & (t < (start + span)[:, None])
        return x.where(~masked[:, :, None], st.mean.expand_as(x))


@register
class TimeWarp(SeriesOp):
    """Resample along time with a smooth random speed curve through `knots` points."""

    op: Literal["time_warp"] = "time_warp"
    sigma: float = Field(0.2, gt=0.0, le=1.0, description="spread of the local speed")
    knots: int = Field(4, ge=1, le=16, description="speed control points")
    kinds: ClassVar[tuple[str, ...]] = ("sequence",)
    needs_stats: ClassVar[bool] = False

    def transform(self, x: Any, u: Any, rng: OpRng, stats: Statistics | None) -> Any:
        import torch

        b, steps, features = x.shape
        speed = (1.0 + self.sigma * rng.normal(self.knots + 2, sub=1)).clamp(min=0.1)
        # linear interpolation of the knot speeds onto every step, then cumulative time
        pos = torch.linspace(0, self.knots + 1, steps, device=x.device, dtype=x.dtype)
        lo = pos.floor().long().clamp(max=self.knots)
        frac = pos - lo.to(x.dtype)
        local = speed[:, lo] * (1 - frac) + speed[:, lo + 1] * frac
        cum = local.cumsum(dim=1) - local[:, :1]
        where = cum / cum[:, -1:].clamp(min=1e-6) * (steps - 1)
        left = where.floor().long().clamp(0, steps - 1)
        right = (left + 1).clamp(max=steps - 1)
        w = (where - left.to(x.dtype))[:, :, None]
        gather_left = x.gather(1, left[:, :, None].expand(b, steps, features))
        gather_right = x.gather(1, right[:, :, None].expand(b, steps, features))
        return gather_left * (1 - w) + gather_right * w
