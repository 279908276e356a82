"""A recipe: one typed section per stage, read from YAML (`scaledl.recipe.load_recipe`)."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from scaledl.config.augment import AugmentConfig
from scaledl.config.data import DataConfig
from scaledl.config.export import ExportConfig
from scaledl.config.forecast import validate_forecast_knobs
from scaledl.config.models import ModelConfig
from scaledl.config.train import TrainConfig
from scaledl.errors import ModelError


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("model", min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    task: Literal["classification", "regression"] = "classification"
    seed: int = 0
    data: DataConfig = Field(default_factory=DataConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)

    @model_validator(mode="before")
    @classmethod
    def _series_is_regression(cls, raw: Any) -> Any:
        """A time series is forecast: the task is regression unless the recipe says otherwise
        (and then the data loader names the conflict)."""
        if isinstance(raw, dict) and "task" not in raw and _is_series(raw.get("data")):
            return {**raw, "task": "regression"}
        return raw

    @model_validator(mode="after")
    def _forecast_knobs(self) -> Recipe:
        """On a time series the families are forecasters, with their own knobs."""
        if self.model.family == "custom" or not _is_series(self.data.model_dump()):
            return self
        try:
            validate_forecast_knobs(self.model.family, self.model.knobs())
        except ModelError as exc:
            raise ValueError(str(exc)) from None
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def digest(self) -> str:
        body = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()[:16]


def _is_series(data: Any) -> bool:
    return isinstance(data, dict) and (
        data.get("kind") == "series" or data.get("series") is not None
    )
