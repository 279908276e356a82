"""A recipe: one typed section per stage, read from YAML (`scaledl.recipe.load_recipe`)."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from scaledl.config.augment import AugmentConfig
from scaledl.config.data import DataConfig
from scaledl.config.export import ExportConfig
from scaledl.config.models import ModelConfig
from scaledl.config.train import TrainConfig


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

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def digest(self) -> str:
        body = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()[:16]
