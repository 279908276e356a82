"""The training loop: deterministic batches, per-step seeding, atomic checkpoints, resume, DDP.

Every optimizer step re-seeds torch from (seed, epoch, step, rank) and every epoch's order comes
from (seed, epoch), so a run resumed from a checkpoint — saved at an epoch end or every
`checkpoint_every` steps — finishes with exactly the weights of an uninterrupted one. Under
torchrun each rank trains on its slice of every global batch (see `sharding`), gradients are
averaged by DDP, BatchNorm statistics are synchronized, metrics are reduced across ranks and only
rank 0 writes checkpoints.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scaledl.config.train import TrainConfig
from scaledl.contract import SpecBase
from scaledl.data.augment import Augmenter
from scaledl.data.dataset import DataSplits
from scaledl.errors import ScaledlError, UsageError
from scaledl.metrics import evaluate_outputs
from scaledl.modalities import modality_of
from scaledl.train import sharding
from scaledl.train.budget import TimeBudget
from scaledl.train.checkpoint import (
    CHECKPOINT_NAME,
    load_for_resume,
    no_checkpoint_message,
    restore_training_state,
    save_training_state,
)
from scaledl.train.distributed import DistContext, autocast_dtype, resolve_device
from scaledl.train.ema import WeightAverage
from scaledl.train.feed import Batch, BatchSource, Feeder, auto_prefetch, auto_workers
from scaledl.train.optim import cpu_state, make_optimizer, uses_channels_last, validation_outputs
from scaledl.train.schedule import lr_factor
from scaledl.train.sharding import epoch_order, step_seed
from scaledl.train.syncbn import sync_batchnorm, unsync_batchnorm
from scaledl.train.tensors import class_weights, loss_fn, soft_target_loss
from scaledl.train.utilisation import (
    StepClock,
    describe,
    group_utilisation,
    try_count_flops,
)
from scaledl.ui import progress

log = logging.getLogger(__name__)
EpochCallback = Callable[[dict[str, Any]], None]
StepCallback = Callable[[dict[str, Any]], None]
LossOverride = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
__all__ = ["TrainResult", "Trainer", "epoch_order", "make_optimizer", "step_seed"]
# Training rows a data-dependent initialisation sees: enough for a 12×12 patch covariance,
# few enough to normalise in a moment.
DATA_INIT_ROWS = 5000


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
        self.preprocessing = preprocessing
        unit = modality_of(preprocessing)
        self.transform = unit.batch_transform(preprocessing).to(self.device)
        self.error_scale = unit.error_scale(preprocessing) if task == "regression" else None
        self.checkpoint_dir = checkpoint_dir
        self.fingerprint = fingerprint
        self.callbacks = callbacks or []
        self.step_callbacks = step_callbacks or []
        self.loss_override = loss_override
        self.checkpoint_every = checkpoint_every
        weights = class_weights(config.class_weights, splits) if task == "classification" else None
        self.criterion = loss_fn(
            task,
            config.label_smoothing,
            self.error_scale,
            weights,
            regression_loss=config.loss,
            huber_delta=config.huber_delta,
        )
        problem = sharding.check_world_size(
            len(splits.train), config.batch_size, self.dist.world_size
        )
        if problem:
            raise ScaledlError(problem)
        self.bounds = sharding.batch_bounds(len(splits.train), config.batch_size)
        self.steps_per_epoch = len(self.bounds)
        self.max_steps = self.steps_per_epoch * config.epochs
        self.warmup_steps = round(config.warmup_epochs * self.steps_per_epoch)
        self.channels_last = uses_channels_last(model, splits.sample_shape)
        self._ema: WeightAverage | None = None
        if config.threads:
            torch.set_num_threads(config.threads)

    @torch.no_grad()
    def _fit_to_data(self, model: torch.nn.Module) -> None:
        """Data-dependent initialisation (a whitening stem's filters) for models that ask for it
        with `fit_to_data(x)`: the first training rows, normalised as the model sees them —
        the same rows on every rank, so the processes start identical."""
        fit = getattr(model, "fit_to_data", None)
        if fit is None:
            return
        rows = self.splits.train.x[: min(len(self.splits.train), DATA_INIT_ROWS)]
        fit(self.transform(rows).to(self.device))

    @property
    def checkpoint_path(self) -> Path | None:
        return self.checkpoint_dir / CHECKPOINT_NAME if self.checkpoint_dir else None

    def fit(self, resume: bool = False, require_checkpoint: bool = False) -> TrainResult:
        """Train to the end. `resume` continues from the newest checkpoint any rank holds; with
        `require_checkpoint` (the user asked for --resume) having none is an error, while a
        group torchrun restarted before its first checkpoint simply starts."""
        began = time.monotonic()  # a time budget counts from here
        model = self.model.to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        synced = sync_batchnorm(model) if self.dist.distributed else []
        self._fit_to_data(model)  # before the average copies it; a resume overwrites it
        optimizer = make_optimizer(model, self.cfg)
        state = self._initial_state()
        if resume:
            state = self._resume(model, optimizer, state, require_checkpoint)
        self._ema = WeightAverage(model, self.cfg.ema_decay) if self.cfg.ema_decay else None
        if self._ema is not None:
            if state["ema"]:
                self._ema.load(state["ema"])
            state["ema"] = self._ema.state()
        net = self._wrap(model)
        bind = getattr(self.augmenter, "bind", None)
        if bind is not None:
            train = self.splits.train
            bind(train.x, train.y, self.transform.scale, self.splits.num_classes)
        feeder = self._feeder()
        budget = TimeBudget(
            self.cfg.time_budget_min,
            self.max_steps,
            self.steps_per_epoch,
            len(self.splits.val),
            elapsed_before=state["elapsed"],
            agree=self._mean,
            started=began,
        )
        clock, start, samples = StepClock(), time.perf_counter(), 0
        try:
            with progress("training", state["total_steps"]) as bar:
                bar.update(completed=self._done(state))
                while self._running(state):
                    epoch, t0 = state["epoch"], time.perf_counter()
                    steps = (feeder, clock, budget)
                    train_stats, trained = self._train_epoch(
                        net, model, optimizer, state, bar, steps
                    )
                    samples += trained
                    t1 = time.perf_counter()
                    with self._ema.applied(model) if self._ema else contextlib.nullcontext():
                        record = self._end_epoch(model, epoch, train_stats, t1 - t0, state)
                    state["elapsed"] = budget.elapsed()
                    self._save(model, optimizer, state)
                    budget.record_epoch_end(time.perf_counter() - t1)
                    for callback in self.callbacks:
                        callback(record)
        finally:
            feeder.close()
            unsync_batchnorm(synced)
        seconds = time.perf_counter() - start
        model.load_state_dict(state["best_state"])
        model.to("cpu", memory_format=torch.contiguous_format)  # type: ignore[call-overload]
        model.eval()
        extra: dict[str, Any] = {
            "world_size": self.dist.world_size,
            "device": str(self.device),
            "precision": self._precision_name(),
            "utilisation": self._utilisation(clock, model, feeder),
        }
        if budget.active:
            done = min(self._done(state), state["total_steps"])
            extra["time_budget"] = budget.summary(
                done, state["total_steps"], state["stopped_on_time"]
            )
        return TrainResult(
            model=model,
            history=state["history"],
            best_epoch=state["best_epoch"],
            best_metric=state["best_metric"],
            stopped_early=state["stopped_early"],
            seconds=seconds,
            samples_per_second=samples / seconds if seconds > 0 else 0.0,
            extra=extra,
        )

    def _done(self, state: dict[str, Any]) -> int:
        return int(state["epoch"]) * self.steps_per_epoch + int(state["step"])

    def _running(self, state: dict[str, Any]) -> bool:
        stopped = state["stopped_early"] or state["stopped_on_time"]
        return not stopped and self._done(state) < state["total_steps"]

    def _mean(self, values: list[float]) -> list[float]:
        return [v / self.dist.world_size for v in self.dist.sum(values)]

    def _precision_name(self) -> str:
        return "bf16" if self.amp_dtype == torch.bfloat16 else "fp32"

    def _feeder(self) -> Feeder:
        """Where batches are built: `train.data_workers` processes, a prefetch thread, or here."""
        from scaledl.train.launch import available_cores

        workers, prefetch = self.cfg.data_workers, self.cfg.prefetch
        if workers == "auto":
            local = int(os.environ.get("LOCAL_WORLD_SIZE", self.dist.world_size))
            workers = auto_workers(len(self.splits.train), available_cores() // max(1, local))
        if prefetch == "auto":
            prefetch = auto_prefetch(len(self.splits.train), int(workers))
        transform = self.transform
        if workers:  # workers build CPU tensors; the training process moves them to the device
            transform = modality_of(self.preprocessing).batch_transform(self.preprocessing)
        train, ctx = self.splits.train, self.dist
        source = BatchSource(
            train.x, train.y, transform, self.augmenter, self.seed, self.bounds,
            ctx.rank, ctx.world_size, self.channels_last,
        )  # fmt: skip
        return Feeder(source, self.steps_per_epoch, int(workers), int(prefetch), self.device)

    def _utilisation(
        self, clock: StepClock, model: torch.nn.Module, feeder: Feeder
    ) -> dict[str, Any]:
        """The group's utilisation figures (rank 0; the others return an empty dict). Counted
        after training, on the trained CPU model: the counter's first use imports torch's
        compiler stack (seconds), which would otherwise eat into a time budget."""
        totals = self.dist.sum(
            [clock.data_seconds, clock.step_seconds, float(clock.samples), float(clock.steps)]
        )
        if not self.dist.is_main:
            return {}
        x = self.transform(self.splits.train.x[: min(8, len(self.splits.train))]).cpu()
        flops = try_count_flops(model, x)
        figures = group_utilisation(
            totals, self.dist.world_size, flops, self.device, self.amp_dtype or torch.float32
        )
        log.info("%s", describe(figures))
        if figures:  # none when no step was timed (a one-step run)
            figures.update(data_workers=feeder.workers, prefetch=feeder.prefetch)
        return figures

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
            "total_steps": self.max_steps,  # a time budget re-plans it
            "elapsed": 0.0,  # seconds trained before an interruption (time budget)
            "stopped_on_time": False,
            "ema": None,  # the weight average's state (train.ema_decay)
        }

    def _train_epoch(
        self,
        net: torch.nn.Module,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        state: dict[str, Any],
        bar: Any,
        steps: tuple[Feeder, StepClock, TimeBudget],
    ) -> tuple[dict[str, float], int]:
        """One epoch from `state`'s step to its end (or the planned total); (stats, samples)."""
        model.train()
        feeder, clock, budget = steps
        ctx, epoch = self.dist, state["epoch"]
        # the partial sums a checkpoint carries are global: one rank adds them back
        sums = list(state["partial"]) if ctx.is_main else [0.0, 0.0, 0.0]
        t0, seen_here, trained = time.perf_counter(), 0.0, 0
        # the whole epoch is asked for: a time budget may lengthen the plan mid-epoch, and the
        # loop stops where the plan ends (batches built ahead of that are dropped)
        end = self.steps_per_epoch
        of = "" if budget.active else f"/{self.cfg.epochs}"  # a budget's epochs: a ceiling
        batches = feeder.epoch(epoch, state["step"], end)
        while True:
            asked = time.perf_counter()
            batch = next(batches, None)
            if batch is None:
                break
            waited = time.perf_counter() - asked
            torch.manual_seed(step_seed(self.seed, epoch, batch.step, ctx.rank))
            loss, correct = self._step(net, optimizer, epoch, batch, state["total_steps"])
            took = time.perf_counter() - asked
            if budget.timed_steps:  # the run's first step (allocation, warm-up) is not timed
                clock.add(waited, took, len(batch.index))
            budget.record_step(took, len(batch.index))
            n = len(batch.index)
            sums = [sums[0] + loss * n, sums[1] + correct, sums[2] + n]
            state["step"], seen_here, trained = (
                batch.step + 1,
                seen_here + n,
                trained + batch.global_size,
            )
            record = {"epoch": epoch, "step": batch.step, "rank": ctx.rank,
                      "index": batch.index, "loss": loss}  # fmt: skip
            for callback in self.step_callbacks:
                callback(record)
            rate = seen_here * ctx.world_size / max(time.perf_counter() - t0, 1e-9)
            shown = {"acc": sums[1] / sums[2]} if self.task == "classification" else {}
            bar.advance(1, description=f"epoch {epoch + 1}{of}", loss=sums[0] / sums[2],
                        **shown, **{"img/s": round(rate)})  # fmt: skip
            every = self.checkpoint_every
            if every and (batch.step + 1) % every == 0 and batch.step + 1 < end:
                self._save(model, optimizer, state, partial=sums)
            if self._replan(state, budget, bar) or self._done(state) >= state["total_steps"]:
                break
        close = getattr(batches, "close", None)
        if close is not None:
            close()  # stop a prefetch thread that is ahead of a shortened plan
        loss_sum, correct_sum, count = ctx.sum(sums)
        state["partial"] = [0.0, 0.0, 0.0]
        stats = {"train_loss": loss_sum / count}
        if self.task == "classification":
            stats["train_accuracy"] = correct_sum / count
        return stats, trained

    def _replan(self, state: dict[str, Any], budget: TimeBudget, bar: Any) -> bool:
        """Fit the plan to the time budget when due; True when training must stop now."""
        if not budget.due(budget.timed_steps, state["total_steps"] - self._done(state)):
            return not self.dist.distributed and budget.overdue()
        total, stop = budget.plan(self._done(state), state["total_steps"])
        if total != state["total_steps"]:
            log.debug("time budget: %d steps planned (was %d)", total, state["total_steps"])
            state["total_steps"] = total
            bar.update(total=total)
        state["stopped_on_time"] = stop
        return stop

    def _step(
        self,
        net: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        epoch: int,
        batch: Batch,
        total_steps: int,
    ) -> tuple[float, int]:
        x, y, soft = batch.x, batch.y, batch.soft
        features = self._feature_augment(epoch, batch.index)
        global_step = epoch * self.steps_per_epoch + batch.step
        factor = self._lr_factor(global_step, total_steps)
        for group in optimizer.param_groups:
            group["lr"] = self.cfg.lr * factor
        with torch.autocast(
            self.device.type, dtype=self.amp_dtype or torch.bfloat16, enabled=bool(self.amp_dtype)
        ):
            out = net(x) if features is None else net(x, feature_augment=features)
            loss = self._loss(out, y, soft, x)
        # DDP averages gradients over ranks; weighting each rank's mean by its share of the
        # global batch makes the result the global batch's mean, also for uneven shards
        weight = len(batch.index) * self.dist.world_size / batch.global_size
        optimizer.zero_grad(set_to_none=True)
        (loss * weight if weight != 1 else loss).backward()
        if self.cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(net.parameters(), self.cfg.grad_clip)
        optimizer.step()
        if self._ema is not None:
            self._ema.update(self.model)
        hits = (out.argmax(1) == y).sum() if self.task == "classification" else loss.new_zeros(())
        # one device→host copy per step for both numbers (each .item() waits for a GPU)
        value, correct = torch.stack([loss.detach().float(), hits.float()]).tolist()
        if not np.isfinite(value):
            raise ScaledlError(
                f"training diverged at epoch {epoch + 1}, step {batch.step + 1} "
                f"(loss is {value}); lower train.lr or set train.grad_clip"
            )
        return value, int(correct)

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

    def _lr_factor(self, step: int, total_steps: int) -> float:
        cfg = self.cfg
        return lr_factor(
            cfg.schedule,
            step,
            total_steps,
            self.warmup_steps,
            self.steps_per_epoch,
            cfg.lr_decay,
        )

    def _validate(self, model: torch.nn.Module) -> np.ndarray:
        """Outputs on the whole validation split; each rank predicts a slice, then gathers."""
        return validation_outputs(
            model, self.splits.val.x, self.dist, self._predict_batches, self.cfg.eval_batch_size
        )

    @torch.no_grad()
    def _predict_batches(self, model: torch.nn.Module, x_raw: np.ndarray) -> torch.Tensor:
        with torch.autocast(
            self.device.type, dtype=self.amp_dtype or torch.bfloat16, enabled=bool(self.amp_dtype)
        ):
            x = self.transform(x_raw)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            return model(x).float().cpu()

    def _end_epoch(
        self,
        model: torch.nn.Module,
        epoch: int,
        train_stats: dict[str, float],
        seconds: float,
        state: dict[str, Any],
    ) -> dict[str, Any]:
        val_stats = evaluate_outputs(
            self._validate(model), self.splits.val.y, self.task, self.error_scale
        )
        metric = val_stats["accuracy"] if self.task == "classification" else -val_stats["loss"]
        last_step = self._done(state) - 1
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            **train_stats,
            **{f"val_{k}": v for k, v in val_stats.items()},
            "seconds": seconds,
            "lr": self.cfg.lr * self._lr_factor(last_step, state["total_steps"]),
        }
        state["history"].append(record)
        state["epoch"], state["step"] = epoch + 1, 0
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
        if self._ema is not None:
            state["ema"] = self._ema.state()  # its update count is a number, not a live tensor
        if self.checkpoint_path is not None:
            save_training_state(
                self.checkpoint_path, self.dist, self.fingerprint, model, optimizer, state, partial
            )

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
        return restore_training_state(
            ckpt, model, optimizer, state, self.dist.world_size, self.steps_per_epoch
        )
