"""Optimizer, model-state and validation helpers shared by the trainer and the optimize stage."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from scaledl.config.train import TrainConfig


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def uses_channels_last(model: torch.nn.Module, sample_shape: tuple[int, ...]) -> bool:
    return len(sample_shape) == 3 and any(isinstance(m, torch.nn.Conv2d) for m in model.modules())


def cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}


@torch.no_grad()
def validation_outputs(
    model: torch.nn.Module,
    x_val: np.ndarray,
    ctx: Any,
    predict: Callable[[torch.nn.Module, np.ndarray], torch.Tensor],
    batch_size: int,
) -> np.ndarray:
    """The model's outputs on the validation rows, in eval mode and batches of `batch_size`;
    in a process group each rank predicts a contiguous slice, then the slices are gathered."""
    from scaledl.train.sharding import shard_sizes

    model.eval()

    def run(rows: np.ndarray) -> torch.Tensor:
        parts = [predict(model, rows[i : i + batch_size]) for i in range(0, len(rows), batch_size)]
        return torch.cat(parts)

    if not ctx.distributed or len(x_val) < ctx.world_size:
        return run(x_val).numpy()
    sizes = shard_sizes(len(x_val), ctx.world_size)
    start = sum(sizes[: ctx.rank])
    local = run(x_val[start : start + sizes[ctx.rank]])
    return ctx.gather_rows(local, sizes).numpy()
