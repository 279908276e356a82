"""The recipe's `data.series` section: how a table of timestamped values becomes forecast windows.

data:
  source: ETTh1.csv
  series:
    timestamp: date          # the time column (null: rows are equally spaced, in file order)
    inputs: null             # value columns the model reads (null: every numeric column)
    targets: null            # columns it forecasts (null: the inputs — multivariate)
    lookback: 336            # steps of history in one window
    horizon: 96              # steps forecast
    train_end: 2017-06-26    # chronological split by date (or by fraction, see below)
    val_end: 2017-10-24
    test_end: 2018-02-21
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_WINDOW = 1 << 16


class SeriesConfig(BaseModel):
    """Windows, columns, the chronological split and what to do with holes in the data."""

    model_config = ConfigDict(extra="forbid")

    timestamp: str | None = Field(
        "date", description="timestamp column (null: rows are equally spaced, in file order)"
    )
    inputs: list[str] | None = Field(
        None, description="value columns the model reads (default: every column but the time)"
    )
    targets: list[str] | None = Field(
        None, description="columns forecast (default: the inputs, i.e. multivariate)"
    )
    lookback: int = Field(96, ge=1, le=MAX_WINDOW, description="steps of history in a window")
    horizon: int = Field(24, ge=1, le=MAX_WINDOW, description="steps forecast from a window")
    stride: int = Field(1, ge=1, le=MAX_WINDOW, description="steps between window starts")
    train_stride: int | None = Field(
        None,
        ge=1,
        le=MAX_WINDOW,
        description="steps between training windows (default: stride); validation and test "
        "always use every window on the stride grid",
    )
    train_end: str | None = Field(
        None,
        description="first timestamp after the training period (ISO date); with val_end and "
        "test_end this replaces the fraction split",
    )
    val_end: str | None = Field(None, description="first timestamp after the validation period")
    test_end: str | None = Field(
        None, description="first timestamp after the test period (default: the end of the data)"
    )
    context: Literal["previous", "within"] = Field(
        "previous",
        description="previous: a validation/test window's look-back may reach into the period "
        "before it (the usual protocol: only the forecast targets must lie in the period); "
        "within: the whole window must lie in its period",
    )
    fill: Literal["none", "ffill", "interpolate"] = Field(
        "none",
        description="empty/NaN cells and missing timestamps: none reports them by row (an "
        "error); ffill repeats the last value; interpolate draws a straight line",
    )
    sort: bool = Field(
        False, description="sort rows by timestamp instead of reporting unsorted rows"
    )
    frequency: str | None = Field(
        None,
        description="time between rows, e.g. 1h, 15min, 1d (default: the most common step)",
    )
    season: int | None = Field(
        None,
        ge=1,
        le=MAX_WINDOW,
        description="steps in one season for the seasonal-naive baseline (default: a day of "
        "hourly or finer data, a week of daily data)",
    )

    @field_validator("train_end", "val_end", "test_end", mode="before")
    @classmethod
    def _date_as_text(cls, value: Any) -> Any:
        """YAML reads an unquoted `2017-06-26` (in a recipe or a `--set`) as a date: the same
        boundary as the quoted text."""
        if isinstance(value, dt.datetime):
            return value.isoformat(sep=" ")
        if isinstance(value, dt.date):
            return value.isoformat()
        return value

    @model_validator(mode="after")
    def _check(self) -> SeriesConfig:
        dates = [self.train_end, self.val_end]
        if any(d is not None for d in dates) and not all(d is not None for d in dates):
            raise ValueError("give both train_end and val_end (or neither: split by fraction)")
        if self.test_end is not None and self.train_end is None:
            raise ValueError("test_end needs train_end and val_end")
        for name in ("inputs", "targets"):
            cols = getattr(self, name)
            if cols is not None and (not cols or len(set(cols)) != len(cols)):
                raise ValueError(f"{name} must list distinct column names")
        return self

    @property
    def by_date(self) -> bool:
        return self.train_end is not None
