"""A modality's front-end in front of a family: raw graph input → features → outputs.

Only modalities with a front-end (one that belongs inside the exported graph, such as a
spectrogram or a token embedding) wrap their models in this; image, table and sequence models
are the bare family, so their weights and graphs are unchanged.

Training may pass `feature_augment`, a per-batch function applied to the front-end's features
before the family reads them (SpecAugment's masks on a spectrogram); the front-end decides
where it applies. Export and inference call `forward(x)` alone.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class WithFrontEnd(nn.Module):
    def __init__(self, frontend: nn.Module, body: nn.Module) -> None:
        super().__init__()
        self.frontend = frontend
        self.body = body

    def forward(
        self, x: torch.Tensor, feature_augment: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> torch.Tensor:
        if feature_augment is None:
            return self.body(self.frontend(x))
        return self.body(self.frontend(x, feature_augment=feature_augment))
