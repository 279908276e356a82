"""The training loop: deterministic batches, per-step seeding, atomic checkpoints, resume.

Every optimizer step re-seeds torch from (seed, epoch, step) and every epoch's order comes from
(seed, epoch), so an interrupted run resumed from its last checkpoint finishes with exactly the
weights of an uninterrupted one.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scaledl.data.augment import Augmenter
from scaledl.data.dataset import DataSplits
from scaledl.errors import ScaledlError
from scaledl.train.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from scaledl.train.config import TrainConfig
from scaledl.train.schedule import lr_factor
from scaledl.train.tensors import (
    Normalizer,
    evaluate_outputs,
    loss_fn,
    predict_torch,
    soft_target_loss,
)
from scaledl.ui import progress

log = logging.getLogger(__name__)
EpochCallback = Callable[[dict[str, Any]], None]


@dataclass
class TrainResult:
    model: torch.nn.Module
    history: list[dict[str, Any]]
    best_epoch: int
    best_metric: float
    stopped_early: bool
    seconds: float
    samples_per_second: float
    extra: dict[str, Any] = field(default_factory=dict)


def step_seed(seed: int, epoch: int, step: int) -> int:
    return (seed * 1_000_003 + epoch * 10_007 + step) % (2**63 - 1)


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch, 0x5CA1ED]).permutation(n)


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


class Trainer:
    """Train `model` on `splits` with `config`; checkpoints go to `checkpoint_dir`."""

    def __init__(
        self,
        model: torch.nn.Module,
        splits: DataSplits,
        config: TrainConfig,
        preprocessing: dict[str, Any],
        task: str = "classification",
        seed: int = 0,
        augmenter: Augmenter | None = None,
        checkpoint_dir: Path | None = None,
        fingerprint: str = "",
        callbacks: list[EpochCallback] | None = None,
        loss_override: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
        | None = None,
    ) -> None:
        self.model, self.splits, self.cfg = model, splits, config
        self.task, self.seed, self.augmenter = task, seed, augmenter
        self.normalizer = Normalizer(preprocessing)
        self.checkpoint_dir = checkpoint_dir
        self.fingerprint = fingerprint
        self.callbacks = callbacks or []
        self.loss_override = loss_override
        self.criterion = loss_fn(task, config.label_smoothing)
        self.steps_per_epoch = max(1, -(-len(splits.train) // config.batch_size))
        self.total_steps = self.steps_per_epoch * config.epochs
        self.warmup_steps = round(config.warmup_epochs * self.steps_per_epoch)
        self.channels_last = uses_channels_last(model, splits.sample_shape)
        if config.threads:
            torch.set_num_threads(config.threads)

    @property
    def checkpoint_path(self) -> Path | None:
        return self.checkpoint_dir / CHECKPOINT_NAME if self.checkpoint_dir else None

    def fit(self, resume: bool = False) -> TrainResult:
        model = self.model
        if self.channels_last:
            model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        optimizer = make_optimizer(model, self.cfg)
        state = self._initial_state()
        if resume:
            state = self._resume(optimizer, state)
        start = time.perf_counter()
        samples = 0
        with progress("training", self.total_steps) as bar:
            bar.update(completed=state["epoch"] * self.steps_per_epoch)
            for epoch in range(state["epoch"], self.cfg.epochs):
                if state["stopped_early"]:
                    break
                t0 = time.perf_counter()
                train_stats = self._train_epoch(model, optimizer, epoch, bar)
                samples += len(self.splits.train)
                record = self._end_epoch(model, epoch, train_stats, time.perf_counter() - t0, state)
                self._save(model, optimizer, state)
                for callback in self.callbacks:
                    callback(record)
        seconds = time.perf_counter() - start
        model.load_state_dict(state["best_state"])
        model.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
        model.eval()
        return TrainResult(
            model=model,
            history=state["history"],
            best_epoch=state["best_epoch"],
            best_metric=state["best_metric"],
            stopped_early=state["stopped_early"],
            seconds=seconds,
            samples_per_second=samples / seconds if seconds > 0 else 0.0,
        )

    def _initial_state(self) -> dict[str, Any]:
        return {
            "epoch": 0,
            "history": [],
            "best_epoch": -1,
            "best_metric": -float("inf"),
            "best_state": copy.deepcopy(self.model.state_dict()),
            "bad_epochs": 0,
            "stopped_early": False,
        }

    def _train_epoch(
        self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, epoch: int, bar: Any
    ) -> dict[str, float]:
        model.train()
        train = self.splits.train
        order = epoch_order(self.seed, epoch, len(train))
        bs = self.cfg.batch_size
        total_loss, correct, seen = 0.0, 0, 0
        t0 = time.perf_counter()
        for step in range(self.steps_per_epoch):
            index = order[step * bs : (step + 1) * bs]
            torch.manual_seed(step_seed(self.seed, epoch, step))
            x, y, soft = self._batch(train.x[index], train.y[index], epoch, index)
            global_step = epoch * self.steps_per_epoch + step
            factor = lr_factor(self.cfg.schedule, global_step, self.total_steps, self.warmup_steps)
            for group in optimizer.param_groups:
                group["lr"] = self.cfg.lr * factor
            out = model(x)
            loss = self._loss(out, y, soft, x)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), self.cfg.grad_clip)
            optimizer.step()
            if not torch.isfinite(loss):
                raise ScaledlError(
                    f"training diverged at epoch {epoch + 1}, step {step + 1} "
                    f"(loss is {loss.item()}); lower train.lr or set train.grad_clip"
                )
            total_loss += loss.item() * len(index)
            seen += len(index)
            if self.task == "classification":
                correct += int((out.argmax(1) == y).sum())
            rate = seen / max(time.perf_counter() - t0, 1e-9)
            bar.advance(
                1,
                description=f"epoch {epoch + 1}/{self.cfg.epochs}",
                loss=total_loss / seen,
                acc=correct / seen,
                **{"img/s": round(rate)},
            )
        stats = {"train_loss": total_loss / seen}
        if self.task == "classification":
            stats["train_accuracy"] = correct / seen
        return stats

    def _batch(
        self, x_raw: np.ndarray, y_raw: np.ndarray, epoch: int, index: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        x = self.normalizer.scaled(x_raw)
        y = torch.from_numpy(y_raw)
        soft = None
        if self.augmenter is not None:
            x, soft = self.augmenter(x, y, seed=self.seed, epoch=epoch, index=index)
        x = self.normalizer.normalize(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y, soft

    def _loss(
        self, out: torch.Tensor, y: torch.Tensor, soft: torch.Tensor | None, x: torch.Tensor
    ) -> torch.Tensor:
        if self.loss_override is not None:
            return self.loss_override(out, y, x)
        if soft is not None:
            return soft_target_loss(out, soft)
        return self.criterion(out, y)

    def _end_epoch(
        self,
        model: torch.nn.Module,
        epoch: int,
        train_stats: dict[str, float],
        seconds: float,
        state: dict[str, Any],
    ) -> dict[str, Any]:
        val = self.splits.val
        outputs = predict_torch(model, val.x, self.normalizer, self.cfg.eval_batch_size)
        val_stats = evaluate_outputs(outputs, val.y, self.task)
        metric = val_stats["accuracy"] if self.task == "classification" else -val_stats["loss"]
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            **train_stats,
            **{f"val_{k}": v for k, v in val_stats.items()},
            "seconds": seconds,
            "lr": self.cfg.lr
            * lr_factor(
                self.cfg.schedule,
                (epoch + 1) * self.steps_per_epoch - 1,
                self.total_steps,
                self.warmup_steps,
            ),
        }
        state["history"].append(record)
        state["epoch"] = epoch + 1
        if metric > state["best_metric"]:
            state["best_metric"], state["best_epoch"], state["bad_epochs"] = metric, epoch + 1, 0
            state["best_state"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            state["bad_epochs"] += 1
            if self.cfg.patience and state["bad_epochs"] >= self.cfg.patience:
                state["stopped_early"] = True
                log.info("early stop after epoch %d (best %d)", epoch + 1, state["best_epoch"])
        log.info(
            "epoch %d: %s",
            epoch + 1,
            {k: round(v, 4) for k, v in record.items() if isinstance(v, float)},
        )
        return record

    def _save(
        self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]
    ) -> None:
        if self.checkpoint_path is None:
            return
        save_checkpoint(
            self.checkpoint_path,
            {
                "format": 1,
                "fingerprint": self.fingerprint,
                "model": {k: v.contiguous() for k, v in model.state_dict().items()},
                "optimizer": optimizer.state_dict(),
                **{k: v for k, v in state.items() if k != "best_state"},
                "best_state": {k: v.contiguous() for k, v in state["best_state"].items()},
            },
        )

    def _resume(self, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> dict[str, Any]:
        path = self.checkpoint_path
        if path is None or not path.is_file():
            log.info("no checkpoint to resume from; starting fresh")
            return state
        ckpt = load_checkpoint(path)
        if ckpt.get("fingerprint") != self.fingerprint:
            raise ScaledlError(
                f"checkpoint {path} was made by a different recipe or data set; "
                "resume with the same recipe, or start without --resume in a new --out folder"
            )
        self.model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        log.info("resumed from %s after epoch %d", path, ckpt["epoch"])
        return {k: ckpt[k] for k in state}
