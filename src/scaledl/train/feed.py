"""Feeding the training step: batches built ahead of compute, the same batches at any setting.

A step's batch is a pure function of (seed, epoch, step, rank): the epoch order, the global
batch bounds, this rank's slice and the counter-based augmentation (`scaledl.data.augment`).
So it can be built anywhere — in the training process (`data_workers: 0`), by a background
thread (`prefetch` batches ahead) or in worker processes of a torch DataLoader (persistent,
`prefetch` batches ahead each) — and the model sees bit-identical batches every way.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from scaledl.train import sharding

AUTO_MIN_SAMPLES = 10_000  # below this a batch costs too little to build ahead


@dataclass
class Batch:
    step: int
    x: torch.Tensor
    y: torch.Tensor
    soft: torch.Tensor | None
    index: np.ndarray  # rows of the training split on this rank
    global_size: int  # samples in the global batch (all ranks)


class BatchSource:
    """Builds this rank's batch of any (epoch, step); holds only what a worker process needs."""

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        transform: Any,
        augmenter: Any,
        seed: int,
        bounds: list[tuple[int, int]],
        rank: int = 0,
        world_size: int = 1,
        channels_last: bool = False,
    ) -> None:
        self.x, self.y, self.transform, self.augmenter = x, y, transform, augmenter
        self.seed, self.bounds = seed, bounds
        self.rank, self.world_size, self.channels_last = rank, world_size, channels_last
        self._order: tuple[int, np.ndarray] | None = None

    def order(self, epoch: int) -> np.ndarray:
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, sharding.epoch_order(self.seed, epoch, len(self.x)))
        return self._order[1]

    def __call__(self, epoch: int, step: int) -> Batch:
        lo, hi = self.bounds[step]
        batch = self.order(epoch)[lo:hi]
        index = sharding.shard(batch, self.rank, self.world_size)
        x = self.transform.load(self.x[index])
        y = torch.from_numpy(self.y[index]).to(x.device)
        soft = None
        if self.augmenter is not None:
            x, soft = self.augmenter(x, y, seed=self.seed, epoch=epoch, index=index)
        x = self.transform.finish(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return Batch(step, x, y, soft, index, len(batch))


def auto_workers(n_train: int, cores: int) -> int:
    """`data_workers: auto`: worker processes only where cores are to spare (8 or more per
    training process); a small machine does better with the prefetch thread (measured on
    2 cores: a worker process competes with the step for a core, a thread mostly waits on
    torch kernels that release the GIL), and a tiny in-memory split needs neither."""
    if n_train < AUTO_MIN_SAMPLES or cores < 8:
        return 0
    return min(4, cores // 4)


def auto_prefetch(n_train: int, workers: int) -> int:
    """`prefetch: auto`: 2 batches ahead (per worker, or by the thread) on larger splits."""
    return 2 if workers or n_train >= AUTO_MIN_SAMPLES else 0


class _StepSteps(torch.utils.data.Sampler[int]):
    """The global step numbers of the current epoch's range, set before each pass."""

    def __init__(self) -> None:
        self.steps: range = range(0)

    def __iter__(self) -> Iterator[int]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)


class _StepDataset(torch.utils.data.Dataset[Batch]):
    def __init__(self, source: BatchSource, steps_per_epoch: int) -> None:
        self.source, self.steps_per_epoch = source, steps_per_epoch

    def __getitem__(self, global_step: int) -> Batch:
        return self.source(*divmod(global_step, self.steps_per_epoch))

    def __len__(self) -> int:
        return 1 << 62


def _as_is(batch: Any) -> Any:
    return batch


class Feeder:
    """Iterates an epoch's batches. workers > 0: DataLoader worker processes (persistent);
    workers == 0 and prefetch > 0: one background thread; both 0: built on demand."""

    def __init__(
        self,
        source: BatchSource,
        steps_per_epoch: int,
        workers: int,
        prefetch: int,
        device: torch.device,
    ) -> None:
        self.source, self.steps_per_epoch = source, steps_per_epoch
        self.workers, self.prefetch, self.device = workers, prefetch, device
        self._sampler = _StepSteps()
        self._loader: Any = None
        if workers > 0:
            self._loader = torch.utils.data.DataLoader(
                _StepDataset(source, steps_per_epoch),
                batch_size=None,
                sampler=self._sampler,
                num_workers=workers,
                prefetch_factor=max(1, prefetch),
                persistent_workers=True,
                pin_memory=device.type == "cuda",
                collate_fn=_as_is,
            )

    def epoch(self, epoch: int, first: int, end: int) -> Iterator[Batch]:
        """Batches of steps [first, end) of `epoch`, in order."""
        if self._loader is not None:
            base = epoch * self.steps_per_epoch
            self._sampler.steps = range(base + first, base + end)
            return (self._to_device(b) for b in self._loader)
        if self.prefetch > 0:
            return self._threaded(epoch, first, end)
        return (self.source(epoch, step) for step in range(first, end))

    def _to_device(self, batch: Batch) -> Batch:
        if self.device.type == "cpu":
            return batch
        batch.x = batch.x.to(self.device, non_blocking=True)
        batch.y = batch.y.to(self.device, non_blocking=True)
        if batch.soft is not None:
            batch.soft = batch.soft.to(self.device, non_blocking=True)
        return batch

    def _threaded(self, epoch: int, first: int, end: int) -> Iterator[Batch]:
        ahead: queue.Queue[Batch | BaseException | None] = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def offer(item: Batch | BaseException | None) -> bool:
            while not stop.is_set():
                try:
                    ahead.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            try:
                for step in range(first, end):
                    if not offer(self.source(epoch, step)):
                        return
                offer(None)
            except BaseException as exc:  # re-raised in the training thread
                offer(exc)

        thread = threading.Thread(target=produce, name="scaledl-prefetch", daemon=True)
        thread.start()
        try:
            while (item := ahead.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            thread.join(timeout=5)

    def close(self) -> None:
        """Stop the worker processes (persistent workers otherwise live until collected)."""
        iterator = getattr(self._loader, "_iterator", None)
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()
        self._loader = None
