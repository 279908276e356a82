"""The `optimize` stage's typed config: the CLI flags and (as a recipe section) the YAML."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class OptimizeConfig(BaseModel):
    """What `scaledl optimize` searches for and under which budget."""

    model_config = ConfigDict(extra="forbid")

    data: str | None = Field(
        None, description="data source (default: the data set in the package lineage)"
    )
    max_accuracy_drop: float = Field(
        0.01,
        ge=0.0,
        le=1.0,
        description="allowed accuracy drop vs the parent (R² for regression), as a promise: "
        "the upper confidence bound of the paired drop must be within it",
    )
    confidence: float = Field(
        0.9,
        ge=0.5,
        lt=1.0,
        description="confidence level of the bound the accuracy budget is checked against",
    )
    latency_ms: float | None = Field(
        None, gt=0.0, description="p95 latency limit at batch_size (ms)"
    )
    batch_size: int = Field(1, ge=1, description="batch size latency is measured (and served) at")
    max_size_mb: float | None = Field(None, gt=0.0, description="model file size limit (MB)")
    target: str = Field("cpu", description="where the model will run")
    time_budget_min: float = Field(15.0, gt=0.0, description="wall-clock budget of the search")
    methods: list[str] | None = Field(None, description="methods to try (default: all defaults)")
    settings: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per-method search settings, e.g. {prune: {ratios: …}}"
    )
    threads: int = Field(1, ge=1, description="intra-op threads latency is measured with")
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
        "parent", description="ONNX exporter for changed models (parent: the one the parent used)"
    )
    keep: Literal["frontier", "all"] = Field(
        "frontier",
        description="which candidates get a package: the Pareto frontier + choice, or all",
    )
    seed: int = 0

    @property
    def accuracy_floor_label(self) -> str:
        return f"drop ≤ {self.max_accuracy_drop * 100:g} pt at {self.confidence:.0%}"
