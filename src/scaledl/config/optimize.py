"""The `optimize` stage's typed config: the CLI flags and (as a recipe section) the YAML."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from scaledl.config.flags import flag


class OptimizeConfig(BaseModel):
    """What `scaledl optimize` searches for and under which budget."""

    model_config = ConfigDict(extra="forbid")

    data: str | None = Field(
        None,
        description="data source (default: the data set in the package lineage)",
        json_schema_extra=flag("--data", "-d"),
    )
    max_accuracy_drop: float = Field(
        0.01,
        ge=0.0,
        le=1.0,
        description="classifiers: allowed validation accuracy drop vs the parent (0.01 = 1 point), "
        "as a promise: the upper confidence bound of the paired drop must be within it",
    )
    max_error_increase: float = Field(
        0.02,
        ge=0.0,
        le=10.0,
        description="regressors: allowed relative rise of the validation error vs the parent "
        "(MSE, on the standardised scale for forecasts; 0.02 = 2 %), checked on its upper "
        "confidence bound",
    )
    confidence: float = Field(
        0.9,
        ge=0.5,
        lt=1.0,
        description="confidence level of the bound the quality budget is checked against (a "
        "paired bootstrap, never below the exact bound; cross-fitted: a prediction bound for "
        "the run that ships)",
    )
    latency_ms: float | None = Field(
        None, gt=0.0, description="p95 latency limit in ms at --batch-size, measured here"
    )
    batch_size: int = Field(1, ge=1, description="batch size latency is measured (and served) at")
    max_size_mb: float | None = Field(None, gt=0.0, description="model file size limit (MB)")
    target: str = Field("cpu", description="where the model will run (valid: cpu)")
    time_budget_min: float = Field(
        15.0, gt=0.0, description="wall-clock budget of the whole search, in minutes"
    )
    methods: list[str] | None = Field(
        None,
        description="methods to try (default: every default method; see --list-methods)",
        json_schema_extra=flag("--methods", separator=","),
    )
    settings: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per-method search settings, e.g. {prune: {ratios: …}}"
    )
    threads: int = Field(1, ge=1, description="intra-op threads latency is measured with")
    scoring_threads: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="intra-op threads for the passes that score accuracy or error (validation, "
        "test, the package's monitoring profile; default: every core this process may use). "
        "Latency is always measured with `threads`",
    )
    measure_seconds: float = Field(
        0.4, gt=0.0, description="timed seconds per candidate during the search"
    )
    final_rounds: int = Field(
        6, ge=1, description="interleaved rounds re-measuring the finalists at the end"
    )
    tie_tolerance: float = Field(
        0.05,
        ge=0.0,
        lt=1.0,
        description="candidates within this fraction of the fastest count as equally fast; "
        "the most accurate of them wins",
    )
    exporter: Literal["parent", "auto", "dynamo", "legacy"] = Field(
        "parent",
        description="ONNX exporter for pruned/slimmed models (parent: the one the parent used)",
    )
    keep: Literal["frontier", "all"] = Field(
        "frontier",
        description="which candidates get a package: the Pareto frontier + choice, or all",
    )
    seed: int = Field(0, description="seed of the fine-tunes and distillation of the search")
    cross_fit: str = Field(
        "auto",
        description="judge candidates on every non-test row as well, retraining the parent on K "
        "folds after the walk over pruning and slimming, before second chances (auto: 5 folds "
        "when the validation split has fewer than 1,000 rows, for the candidates that could "
        "win; off; or K from 2 to 10, for every candidate)",
    )

    @field_validator("cross_fit")
    @classmethod
    def _folds_or_mode(cls, value: str) -> str:
        if value in ("auto", "off") or (value.isdigit() and 2 <= int(value) <= 10):
            return value
        raise ValueError("expected auto, off or a number of folds from 2 to 10")

    @property
    def accuracy_floor_label(self) -> str:
        return f"drop ≤ {self.max_accuracy_drop * 100:g} pt at {self.confidence:.0%}"

    def budget_label(self, task: str) -> str:
        if task == "classification":
            return f"accuracy drop ≤ {self.max_accuracy_drop * 100:g} pt at {self.confidence:.0%}"
        return f"error increase ≤ {self.max_error_increase * 100:g} % at {self.confidence:.0%}"
