"""The recipe's `export` section."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ExportConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    opset: int = Field(18, ge=13, le=23)
    exporter: Literal["auto", "dynamo", "legacy"] = Field(
        "auto", description="auto: dynamo, except legacy for recurrent layers (16 s vs 0.1 s)"
    )
    parity_tolerance: float = Field(1e-4, gt=0.0, description="max abs error ONNX vs PyTorch")
    sample_size: int = Field(16, ge=2, le=1024, description="held-out inputs kept in sample.npz")
