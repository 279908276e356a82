"""The series front-end inside the graph: standardise the raw look-back with the training
period's statistics, and turn the standardised forecast back into original units."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class SeriesScaling(nn.Module):
    mean: torch.Tensor
    std: torch.Tensor
    target_mean: torch.Tensor
    target_std: torch.Tensor

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()

        def row(key: str) -> torch.Tensor:
            return torch.tensor(config[key], dtype=torch.float32).reshape(1, 1, -1)

        self.register_buffer("mean", row("mean"))
        self.register_buffer("std", row("std"))
        self.register_buffer("target_mean", row("target_mean"))
        self.register_buffer("target_std", row("target_std"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.target_std + self.target_mean
