"""Typed settings of the drift tests and of live monitoring (the recipe-style config objects)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TestName = Literal["ks_pca", "mmd", "confidence", "classes", "outputs", "windows"]
WindowsScore = Literal["sensor", "feature"]
ALL_TESTS: tuple[str, ...] = ("ks_pca", "mmd", "confidence", "classes", "outputs", "windows")


class DriftConfig(BaseModel):
    """How a window of data is compared with the reference profile.

    `alpha` is the false-alarm rate of the whole check: the per-component KS tests are
    Bonferroni-corrected inside `ks_pca`, and the tests are Bonferroni-combined with each other
    (each test flags at alpha / number of tests).
    """

    model_config = ConfigDict(extra="forbid")

    alpha: float = Field(
        0.05, gt=0.0, lt=1.0, description="false-alarm rate of the whole check (0 < alpha < 1)"
    )
    tests: list[TestName] | None = Field(
        None, description="tests to run (default: every test the profile supports)"
    )
    permutations: int = Field(
        200, ge=19, le=5000, description="MMD permutation count (p-value resolution 1/(n+1))"
    )
    simulations: int = Field(
        1000, ge=99, le=20000, description="Monte-Carlo tables for chi-square with sparse cells"
    )
    mmd_max_window: int = Field(
        1000, ge=20, description="MMD pools at most this many window rows (random subsample)"
    )
    min_samples: int = Field(20, ge=5, description="smaller windows are not tested")
    windows_score: WindowsScore = Field(
        "feature",
        description="forecasters' windows test: 'feature' scores a window by its largest single "
        "standardised feature; 'sensor' by each sensor's sum of them, each in units of its own "
        "null tail (catches more faults that move several features of one sensor a little, "
        "alarms more on seasons the reference never held; see docs/forecasting.md)",
    )
    seed: int | None = Field(None, description="fix the tests' randomness (tie-breaks, MMD)")


class MonitorConfig(BaseModel):
    """Live monitoring in the server: windows, check cadence, alerts."""

    model_config = ConfigDict(extra="forbid")

    drift: DriftConfig = Field(default_factory=DriftConfig)
    window: int = Field(500, ge=20, le=100_000, description="samples in a drift window")
    window_seconds: float | None = Field(
        None, gt=0, description="also drop samples older than this from the window"
    )
    check_every: int | None = Field(
        None, ge=1, description="new samples between checks (default: a full new window)"
    )
    check_interval_s: float = Field(
        30.0, gt=0, description="also check this often when new samples arrived"
    )
    accuracy_window: int = Field(500, ge=10, description="labelled samples in live accuracy")
    min_feedback: int = Field(30, ge=1, description="labels needed before accuracy can alert")
    accuracy_threshold: float | None = Field(
        None, ge=0.0, le=1.0, description="alert below this accuracy (default: reference − drop)"
    )
    accuracy_drop: float = Field(0.05, ge=0.0, le=1.0, description="allowed drop vs reference")
    accuracy_margin: float = Field(
        0.02, ge=0.0, le=1.0, description="hysteresis: clear once accuracy ≥ threshold + margin"
    )
    error_threshold: float | None = Field(
        None,
        gt=0.0,
        description="regressors: alert above this live error (default: reference × (1 + "
        "error_increase))",
    )
    error_increase: float = Field(
        0.25, ge=0.0, description="regressors: allowed relative rise of the live error"
    )
    fire_after: int = Field(2, ge=1, description="consecutive drifting checks before an alert")
    clear_after: int = Field(2, ge=1, description="consecutive clean checks before it clears")
    clear_p: float = Field(
        0.2, gt=0.0, le=1.0, description="hysteresis: a check is clean when p ≥ this"
    )
    webhook_url: str | None = Field(None, description="POST alerts as JSON to this URL")
    webhook_timeout_s: float = Field(5.0, gt=0)
    history: int = Field(720, ge=10, le=100_000, description="points kept per chart")
    bucket_seconds: float = Field(10.0, gt=0, description="traffic chart resolution")
    pending_requests: int = Field(
        10_000, ge=0, description="recent request ids remembered for feedback"
    )

    @model_validator(mode="after")
    def _clear_above_alpha(self) -> MonitorConfig:
        if self.clear_p < self.drift.alpha:
            raise ValueError(f"clear_p ({self.clear_p}) must be ≥ drift.alpha ({self.drift.alpha})")
        return self

    @property
    def every(self) -> int:
        return self.check_every or self.window
