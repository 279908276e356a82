"""Time series: checked tables of timestamped values, forecast windows, chronological splits and
the naive baselines every forecast is compared with."""

from __future__ import annotations

from scaledl.config.series import SeriesConfig

__all__ = ["SeriesConfig"]
