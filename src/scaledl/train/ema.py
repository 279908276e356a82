"""`train.ema_decay`: an exponential moving average of the weights, validated and packaged.

After every optimizer step the average moves toward the current weights (BatchNorm running
statistics included; integer buffers are copied). The decay ramps up over the first steps as
in TensorFlow's and timm's EMA, min(decay, (1 + n) / (10 + n)), so early averages do not
drag the random initialisation along. Validation, the best epoch and the package use the
average; training continues from the raw weights. Checkpoints carry both, so a resumed run
still ends bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch


class WeightAverage:
    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.weights = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def state(self) -> dict[str, Any]:
        """What a checkpoint holds: the update count now and the (live) averaged tensors."""
        return {"updates": self.updates, "weights": self.weights}

    def load(self, saved: dict[str, Any]) -> None:
        self.updates = int(saved["updates"])
        for key, value in saved["weights"].items():
            self.weights[key].copy_(value)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for key, value in model.state_dict().items():
            average = self.weights[key]
            if average.is_floating_point():
                average.lerp_(value.detach(), 1.0 - decay)
            else:
                average.copy_(value)

    @contextlib.contextmanager
    def applied(self, model: torch.nn.Module) -> Iterator[None]:
        """The model holds the average inside the block, its own weights again after it."""
        own = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.weights)
        try:
            yield
        finally:
            model.load_state_dict(own)
