"""A modality's front-end in front of a family: raw graph input → features → outputs.

Only modalities with a front-end (one that belongs inside the exported graph, such as a
spectrogram or a token embedding) wrap their models in this; image, table and sequence models
are the bare family, so their weights and graphs are unchanged.
"""

from __future__ import annotations

import torch
from torch import nn


class WithFrontEnd(nn.Module):
    def __init__(self, frontend: nn.Module, body: nn.Module) -> None:
        super().__init__()
        self.frontend = frontend
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.frontend(x))
