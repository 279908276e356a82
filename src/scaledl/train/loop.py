"""The training loop: deterministic batches, per-step seeding, atomic checkpoints, resume, DDP.

Every optimizer step re-seeds torch from (seed, epoch, step, rank) and every epoch's order comes
from (seed, epoch), so a run resumed from a checkpoint — saved at an epoch end or every
`checkpoint_every` steps — finishes with exactly the weights of an uninterrupted one. Under
torchrun each rank trains on its slice of every global batch (see `sharding`), gradients are
averaged by DDP, BatchNorm statistics are synchronized, metrics are reduced across ranks and only
rank 0 writes checkpoints.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scaledl.contract import SpecBase
from scaledl.data.augment import Augmenter
from scaledl.data.dataset import DataSplits
from scaledl.errors import ScaledlError, UsageError
from scaledl.metrics import evaluate_outputs
from scaledl.modalities import modality_of
from scaledl.train import sharding
from scaledl.train.checkpoint import (
    CHECKPOINT_NAME,
    FORMAT,
    load_for_resume,
    no_checkpoint_message,
    save_checkpoint,
)
from scaledl.train.config import TrainConfig
from scaledl.train.distributed import DistContext, autocast_dtype, resolve_device
from scaledl.train.optim import cpu_state, make_optimizer, uses_channels_last
from scaledl.train.schedule import lr_factor
from scaledl.train.sharding import epoch_order, step_seed
from scaledl.train.syncbn import sync_batchnorm, unsync_batchnorm
from scaledl.train.tensors import loss_fn, soft_target_loss
from scaledl.ui import progress

log = logging.getLogger(__name__)
EpochCallback = Callable[[dict[str, Any]], None]
StepCallback = Callable[[dict[str, Any]], None]
LossOverride = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
__all__ = ["TrainResult", "Trainer", "epoch_order", "make_optimizer", "step_seed"]


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


class Trainer:
    """Train `model` on `splits` with `config`; checkpoints go to `checkpoint_dir`.

    `dist` is the process group (default: one process); `device` is used when there is none.
    `checkpoint_every` adds mid-epoch checkpoints every N optimizer steps. `step_callbacks`
    see each step's record (epoch, step, rank, sample index…) after the optimizer step.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        splits: DataSplits,
        config: TrainConfig,
        preprocessing: SpecBase,
        task: str = "classification",
        seed: int = 0,
        augmenter: Augmenter | None = None,
        checkpoint_dir: Path | None = None,
        fingerprint: str = "",
        callbacks: list[EpochCallback] | None = None,
        loss_override: LossOverride | None = None,
        *,
        dist: DistContext | None = None,
        device: str | None = None,
        precision: str = "auto",
        checkpoint_every: int | None = None,
        step_callbacks: list[StepCallback] | None = None,
    ) -> None:
        self.model, self.splits, self.cfg = model, splits, config
        self.task, self.seed, self.augmenter = task, seed, augmenter
        self.dist = dist or DistContext(device=resolve_device(device or "cpu"))
        self.device = self.dist.device
        self.amp_dtype = autocast_dtype(self.device, precision)
        self.transform = modality_of(preprocessing).batch_transform(preprocessing).to(self.device)
        self.checkpoint_dir = checkpoint_dir
        self.fingerprint = fingerprint
        self.callbacks = callbacks or []
        self.step_callbacks = step_callbacks or []
        self.loss_override = loss_override
        self.checkpoint_every = checkpoint_every
        self.criterion = loss_fn(task, config.label_smoothing)
        problem = sharding.check_world_size(
            len(splits.train), config.batch_size, self.dist.world_size
        )
        if problem:
            raise ScaledlError(problem)
        self.bounds = sharding.batch_bounds(len(splits.train), config.batch_size)
        self.steps_per_epoch = len(self.bounds)
        self.total_steps = self.steps_per_epoch * config.epochs
        self.warmup_steps = round(config.warmup_epochs * self.steps_per_epoch)
        self.channels_last = uses_channels_last(model, splits.sample_shape)
        if config.threads:
            torch.set_num_threads(config.threads)

    @property
    def checkpoint_path(self) -> Path | None:
        return self.checkpoint_dir / CHECKPOINT_NAME if self.checkpoint_dir else None

    def fit(self, resume: bool = False, require_checkpoint: bool = False) -> TrainResult:
        """Train to the end. `resume` continues from the newest checkpoint any rank holds; with
        `require_checkpoint` (the user asked for --resume) having none is an error, while a
        group torchrun restarted before its first checkpoint simply starts."""
        model = self.model.to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        synced = sync_batchnorm(model) if self.dist.distributed else []
        optimizer = make_optimizer(model, self.cfg)
        state = self._initial_state()
        if resume:
            state = self._resume(model, optimizer, state, require_checkpoint)
        net = self._wrap(model)
        bind = getattr(self.augmenter, "bind", None)
        if bind is not None:
            train = self.splits.train
            bind(train.x, train.y, self.transform.scale, self.splits.num_classes)
        start, samples = time.perf_counter(), 0
        try:
            with progress("training", self.total_steps) as bar:
                bar.update(completed=state["epoch"] * self.steps_per_epoch + state["step"])
                for epoch in range(state["epoch"], self.cfg.epochs):
                    if state["stopped_early"]:
                        break
                    t0 = time.perf_counter()
                    samples += self._samples_left(state)
                    train_stats = self._train_epoch(net, model, optimizer, epoch, state, bar)
                    elapsed = time.perf_counter() - t0
                    record = self._end_epoch(model, epoch, train_stats, elapsed, state)
                    self._save(model, optimizer, state)
                    for callback in self.callbacks:
                        callback(record)
        finally:
            unsync_batchnorm(synced)
        seconds = time.perf_counter() - start
        model.load_state_dict(state["best_state"])
        model.to("cpu", memory_format=torch.contiguous_format)  # type: ignore[call-overload]
        model.eval()
        return TrainResult(
            model=model,
            history=state["history"],
            best_epoch=state["best_epoch"],
            best_metric=state["best_metric"],
            stopped_early=state["stopped_early"],
            seconds=seconds,
            samples_per_second=samples / seconds if seconds > 0 else 0.0,
            extra={
                "world_size": self.dist.world_size,
                "device": str(self.device),
                "precision": "bf16" if self.amp_dtype == torch.bfloat16 else "fp32",
            },
        )

    def _wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        if not self.dist.distributed:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        # BatchNorm buffers are identical on every rank (synchronized statistics): no re-sync
        try:
            return DistributedDataParallel(model, device_ids=ids, forward_sync_buffers=False)
        except TypeError:  # torch before forward_sync_buffers
            return DistributedDataParallel(model, device_ids=ids, broadcast_buffers=False)

    def _samples_left(self, state: dict[str, Any]) -> int:
        done = self.bounds[state["step"] - 1][1] if state["step"] else 0
        return len(self.splits.train) - done

    def _initial_state(self) -> dict[str, Any]:
        return {
            "epoch": 0,
            "step": 0,
            "partial": [0.0, 0.0, 0.0],
            "history": [],
            "best_epoch": -1,
            "best_metric": -float("inf"),
            "best_state": cpu_state(self.model),
            "bad_epochs": 0,
            "stopped_early": False,
        }

    def _train_epoch(
        self,
        net: torch.nn.Module,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        epoch: int,
        state: dict[str, Any],
        bar: Any,
    ) -> dict[str, float]:
        model.train()
        train, ctx = self.splits.train, self.dist
        order = epoch_order(self.seed, epoch, len(train))
        # the partial sums a checkpoint carries are global: one rank adds them back
        sums = list(state["partial"]) if ctx.is_main else [0.0, 0.0, 0.0]
        t0, seen_here = time.perf_counter(), 0.0
        for step in range(state["step"], self.steps_per_epoch):
            lo, hi = self.bounds[step]
            batch = order[lo:hi]
            index = sharding.shard(batch, ctx.rank, ctx.world_size)
            torch.manual_seed(step_seed(self.seed, epoch, step, ctx.rank))
            loss, correct = self._step(net, optimizer, epoch, step, index, len(batch))
            sums = [sums[0] + loss * len(index), sums[1] + correct, sums[2] + len(index)]
            state["step"] = step + 1
            seen_here += len(index)
            record = {"epoch": epoch, "step": step, "rank": ctx.rank, "index": index, "loss": loss}
            for callback in self.step_callbacks:
                callback(record)
            rate = seen_here * ctx.world_size / max(time.perf_counter() - t0, 1e-9)
            bar.advance(
                1,
                description=f"epoch {epoch + 1}/{self.cfg.epochs}",
                loss=sums[0] / sums[2],
                acc=sums[1] / sums[2],
                **{"img/s": round(rate)},
            )
            every = self.checkpoint_every
            if every and (step + 1) % every == 0 and step + 1 < self.steps_per_epoch:
                self._save(model, optimizer, state, partial=sums)
        loss_sum, correct_sum, count = ctx.sum(sums)
        state["step"], state["partial"] = 0, [0.0, 0.0, 0.0]
        stats = {"train_loss": loss_sum / count}
        if self.task == "classification":
            stats["train_accuracy"] = correct_sum / count
        return stats

    def _step(
        self,
        net: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        epoch: int,
        step: int,
        index: np.ndarray,
        global_size: int,
    ) -> tuple[float, int]:
        train = self.splits.train
        x, y, soft = self._batch(train.x[index], train.y[index], epoch, index)
        features = self._feature_augment(epoch, index)
        global_step = epoch * self.steps_per_epoch + step
        factor = lr_factor(self.cfg.schedule, global_step, self.total_steps, self.warmup_steps)
        for group in optimizer.param_groups:
            group["lr"] = self.cfg.lr * factor
        with torch.autocast(
            self.device.type, dtype=self.amp_dtype or torch.bfloat16, enabled=bool(self.amp_dtype)
        ):
            out = net(x) if features is None else net(x, feature_augment=features)
            loss = self._loss(out, y, soft, x)
        # DDP averages gradients over ranks; weighting each rank's mean by its share of the
        # global batch makes the result the global batch's mean, also for uneven shards
        weight = len(index) * self.dist.world_size / global_size
        optimizer.zero_grad(set_to_none=True)
        (loss * weight if weight != 1 else loss).backward()
        if self.cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(net.parameters(), self.cfg.grad_clip)
        optimizer.step()
        hits = (out.argmax(1) == y).sum() if self.task == "classification" else loss.new_zeros(())
        # one device→host copy per step for both numbers (each .item() waits for a GPU)
        value, correct = torch.stack([loss.detach().float(), hits.float()]).tolist()
        if not np.isfinite(value):
            raise ScaledlError(
                f"training diverged at epoch {epoch + 1}, step {step + 1} "
                f"(loss is {value}); lower train.lr or set train.grad_clip"
            )
        return value, int(correct)

    def _batch(
        self, x_raw: np.ndarray, y_raw: np.ndarray, epoch: int, index: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        x = self.transform.load(x_raw)
        y = torch.from_numpy(y_raw).to(self.device)
        soft = None
        if self.augmenter is not None:
            x, soft = self.augmenter(x, y, seed=self.seed, epoch=epoch, index=index)
        x = self.transform.finish(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y, soft

    def _feature_augment(self, epoch: int, index: np.ndarray) -> Any:
        """The batch's feature-level augmentation (e.g. SpecAugment), applied by the model's
        front-end between its features and the family; None when the policy has none."""
        make = getattr(self.augmenter, "feature_augment", None)
        return make(seed=self.seed, epoch=epoch, index=index) if make is not None else None

    def _loss(
        self, out: torch.Tensor, y: torch.Tensor, soft: torch.Tensor | None, x: torch.Tensor
    ) -> torch.Tensor:
        if self.loss_override is not None:
            return self.loss_override(out, y, x)
        if soft is not None:
            eps = self.cfg.label_smoothing
            if eps:
                soft = soft * (1.0 - eps) + eps / soft.shape[1]
            return soft_target_loss(out.float(), soft)
        return self.criterion(out.float(), y)

    @torch.no_grad()
    def _predict(self, model: torch.nn.Module, x_raw: np.ndarray) -> torch.Tensor:
        model.eval()
        bs, outs = self.cfg.eval_batch_size, []
        with torch.autocast(
            self.device.type, dtype=self.amp_dtype or torch.bfloat16, enabled=bool(self.amp_dtype)
        ):
            for i in range(0, len(x_raw), bs):
                x = self.transform(x_raw[i : i + bs])
                if self.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                outs.append(model(x).float().cpu())
        return torch.cat(outs)

    def _validate(self, model: torch.nn.Module) -> np.ndarray:
        """Outputs on the whole validation split; each rank predicts a slice, then gathers."""
        val, ctx = self.splits.val, self.dist
        if not ctx.distributed or len(val) < ctx.world_size:
            return self._predict(model, val.x).numpy()
        sizes = sharding.shard_sizes(len(val), ctx.world_size)
        start = sum(sizes[: ctx.rank])
        local = self._predict(model, val.x[start : start + sizes[ctx.rank]])
        return ctx.gather_rows(local, sizes).numpy()

    def _end_epoch(
        self,
        model: torch.nn.Module,
        epoch: int,
        train_stats: dict[str, float],
        seconds: float,
        state: dict[str, Any],
    ) -> dict[str, Any]:
        val_stats = evaluate_outputs(self._validate(model), self.splits.val.y, self.task)
        metric = val_stats["accuracy"] if self.task == "classification" else -val_stats["loss"]
        last_step = (epoch + 1) * self.steps_per_epoch - 1
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            **train_stats,
            **{f"val_{k}": v for k, v in val_stats.items()},
            "seconds": seconds,
            "lr": self.cfg.lr
            * lr_factor(self.cfg.schedule, last_step, self.total_steps, self.warmup_steps),
        }
        state["history"].append(record)
        state["epoch"] = epoch + 1
        if metric > state["best_metric"]:
            state["best_metric"], state["best_epoch"], state["bad_epochs"] = metric, epoch + 1, 0
            state["best_state"] = cpu_state(model)
        else:
            state["bad_epochs"] += 1
            if self.cfg.patience and state["bad_epochs"] >= self.cfg.patience:
                state["stopped_early"] = True
                log.info("early stop after epoch %d (best %d)", epoch + 1, state["best_epoch"])
        log.log(
            logging.INFO if self.dist.is_main else logging.DEBUG,
            "epoch %d: %s",
            epoch + 1,
            {k: round(v, 4) for k, v in record.items() if isinstance(v, float)},
        )
        return record

    def _save(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        state: dict[str, Any],
        partial: list[float] | None = None,
    ) -> None:
        if self.checkpoint_path is None:
            return
        totals = self.dist.sum(partial) if partial is not None else [0.0, 0.0, 0.0]
        if not self.dist.is_main:
            return
        body = {k: v for k, v in state.items() if k not in ("best_state", "partial")}
        save_checkpoint(
            self.checkpoint_path,
            {
                "format": FORMAT,
                "fingerprint": self.fingerprint,
                "world_size": self.dist.world_size,
                "model": cpu_state(model),
                "optimizer": optimizer.state_dict(),
                **body,
                "partial": totals,
                "best_state": state["best_state"],
            },
        )
        if partial is not None:
            log.debug("checkpoint at epoch %d step %d", state["epoch"] + 1, state["step"])

    def _resume(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        state: dict[str, Any],
        require_checkpoint: bool = False,
    ) -> dict[str, Any]:
        ckpt = load_for_resume(self.dist, self.checkpoint_path, self.fingerprint)
        if ckpt is None and require_checkpoint:
            raise UsageError(no_checkpoint_message(self.checkpoint_path))
        if ckpt is None:
            log.info("no checkpoint to resume from; starting fresh")
            return state
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        log.info(
            "resumed from %s at epoch %d, step %d of %d",
            self.checkpoint_path,
            ckpt["epoch"] + 1,
            ckpt["step"],
            self.steps_per_epoch,
        )
        resumed = {k: ckpt.get(k, state[k]) for k in state}
        resumed["partial"] = [float(v) for v in resumed["partial"]]
        return resumed
