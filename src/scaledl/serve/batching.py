"""Dynamic batching: requests queue per model version; runner threads stack and run them.

The event loop only stages requests and, once per loop iteration, hands them over with one
`SimpleQueue.put` (so a burst of requests costs one thread wake-up, not one each). A runner
thread collects what is queued — up to the batch limit (`max_batch_size`, or the size measured
fastest at load), waiting at most `max_queue_delay_ms` after the first — concatenates along the
batch axis, runs ONNX Runtime (which releases the GIL) and hands the whole batch back with one
`call_soon_threadsafe`. While one batch computes, the next one fills, so batching costs no
delay at low load (delay 0 by default) and grows by itself under load. `instances` runner
threads share one session (ONNX Runtime allows concurrent runs): on a multi-core machine,
several single-threaded batch-1 runs beat one run spread over cores for small models.

Admission control lives on the loop side: more than `max_queue` pending requests → 429; a
request that outlives its deadline gets 504 and is skipped by the runner if still queued.

A request bigger than one batch is split into batch-sized chunks queued one after the other:
the next chunk joins the back of the queue only when the previous one is answered, so other
clients' requests run in between instead of waiting behind the whole request, and ONNX
Runtime never sees (nor sizes its memory arena for) more than one batch.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from scaledl.config.serve import BatchingConfig
from scaledl.errors import DeadlineExceededError, OverloadedError, ScaledlError

log = logging.getLogger(__name__)
_STOP = object()


class InferenceFailed(ScaledlError):
    http_status = 500


@dataclass(slots=True)
class BatchResult:
    outputs: list[np.ndarray]  # this request's rows of every graph output, in graph order
    queue_s: float
    compute_s: float
    batch_size: int


class Pending:
    __slots__ = ("counted", "enqueued", "future", "inputs", "key", "n", "timer")

    def __init__(
        self,
        inputs: dict[str, np.ndarray],
        n: int,
        key: Any,
        future: asyncio.Future[Any],
        counted: bool = True,
    ) -> None:
        self.inputs = inputs
        self.n = n
        self.key = key
        self.future = future
        self.counted = counted  # False for the chunks of a split request (it counts once)
        self.enqueued = time.perf_counter()
        self.timer: asyncio.TimerHandle | None = None


BatchObserver = Callable[[int, float], None]  # (samples, compute seconds)


class Batcher:
    def __init__(
        self,
        session: Any,
        input_names: list[str],
        batched: bool,
        config: BatchingConfig,
        loop: asyncio.AbstractEventLoop,
        label: str,
        on_batch: BatchObserver | None = None,
        batch_limit: int | None = None,
        free_dims: bool = False,
        adapter: Any = None,
    ) -> None:
        self.session = session
        self.adapter = adapter  # served inputs → graph inputs → outputs (text), in this thread
        self.input_names = input_names
        self.batched = batched
        self.config = config
        self.loop = loop
        self.label = label
        self.on_batch = on_batch
        self.free_dims = batched and free_dims
        self.limit = min(batch_limit or config.max_batch_size, config.max_batch_size)
        self.pending = 0  # touched by the event loop thread only
        self._idle = asyncio.Event()
        self._idle.set()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._staged: list[Pending] = []
        self._splits: set[asyncio.Task[None]] = set()
        self._threads = [
            threading.Thread(target=self._run, name=f"batcher-{label}-{i}", daemon=True)
            for i in range(config.instances)
        ]
        for thread in self._threads:
            thread.start()

    # ---- event loop side -------------------------------------------------------------
    def submit(
        self, inputs: dict[str, np.ndarray], n: int, timeout_s: float
    ) -> asyncio.Future[Any]:
        """Queue one request; its future resolves to a `BatchResult` (or 504/500)."""
        if self.pending >= self.config.max_queue:
            raise OverloadedError(
                f"model {self.label} has {self.pending} requests pending (max_queue "
                f"{self.config.max_queue}); retry later"
            )
        future = self.loop.create_future()
        self.pending += 1
        self._idle.clear()
        if self.batched and n > self.limit:
            task = self.loop.create_task(self._split(inputs, n, future, timeout_s))
            self._splits.add(task)
            task.add_done_callback(self._splits.discard)
            return future
        item = Pending(inputs, n, self._key(inputs), future)
        item.timer = self.loop.call_later(timeout_s, self._expire, item, timeout_s)
        future.add_done_callback(lambda f: self._cancelled(item) if f.cancelled() else None)
        self._stage(item)
        return future

    def _key(self, inputs: dict[str, np.ndarray]) -> Any:
        """Requests are stacked only with the same trailing shapes (None: any)."""
        if not self.free_dims:
            return None
        return tuple((a.dtype.str, a.shape[1:]) for a in inputs.values())

    def _stage(self, item: Pending) -> None:
        if not self._staged:
            self.loop.call_soon(self._flush)
        self._staged.append(item)

    async def _split(
        self, inputs: dict[str, np.ndarray], n: int, future: asyncio.Future[Any], timeout_s: float
    ) -> None:
        """Answer a request of more than one batch, one batch-sized chunk at a time."""
        deadline = self.loop.time() + timeout_s
        parts: list[list[np.ndarray]] = []
        queue_s = compute_s = 0.0
        try:
            for start in range(0, n, self.limit):
                if future.done():  # expired or abandoned: stop computing for nobody
                    return
                chunk = {k: v[start : start + self.limit] for k, v in inputs.items()}
                size = min(self.limit, n - start)
                sub = self.loop.create_future()
                self._stage(Pending(chunk, size, self._key(chunk), sub, counted=False))
                try:
                    async with asyncio.timeout_at(deadline):
                        result: BatchResult = await asyncio.shield(sub)
                except TimeoutError:
                    sub.cancel()  # still queued: the runner skips it
                    raise DeadlineExceededError(
                        f"no answer from model {self.label} within {timeout_s:g} s"
                    ) from None
                parts.append(result.outputs)
                queue_s += result.queue_s
                compute_s += result.compute_s
            outputs = [np.concatenate(rows) for rows in zip(*parts)]
            if not future.done():
                future.set_result(BatchResult(outputs, queue_s, compute_s, self.limit))
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
        finally:
            self._settled(1)

    def _flush(self) -> None:
        """Hand what arrived in this loop iteration to the runners, one batch per wake-up."""
        staged, self._staged = self._staged, []
        if len(self._threads) == 1 or len(staged) <= self.limit:
            self._queue.put(staged)
            return
        chunk: list[Pending] = []
        size = 0
        for item in staged:  # several runners: split so that each can take a share
            if chunk and size + item.n > self.limit:
                self._queue.put(chunk)
                chunk, size = [], 0
            chunk.append(item)
            size += item.n
        self._queue.put(chunk)

    def _expire(self, item: Pending, timeout_s: float) -> None:
        if item.future.done():
            return
        item.future.set_exception(
            DeadlineExceededError(f"no answer from model {self.label} within {timeout_s:g} s")
        )
        self._settled(1)

    def _cancelled(self, item: Pending) -> None:
        """The caller gave up (a gRPC client left or its deadline passed): stop counting it.

        `_deliver` and `_expire` settle only futures still open, so a cancelled one is settled
        here; the runner skips it if it is still queued.
        """
        if item.timer is not None:
            item.timer.cancel()
        self._settled(1)

    def _settled(self, count: int) -> None:
        self.pending -= count
        if self.pending <= 0:
            self.pending = 0
            self._idle.set()

    def _deliver(
        self,
        batch: list[Pending],
        outputs: list[np.ndarray] | None,
        error: str | None,
        started: float,
        compute_s: float,
    ) -> None:
        total = sum(item.n for item in batch)
        offset, settled = 0, 0
        for item in batch:
            n = item.n
            if not item.future.done():
                settled += item.counted
                if item.timer is not None:
                    item.timer.cancel()
                if error is not None or outputs is None:
                    item.future.set_exception(InferenceFailed(f"inference failed: {error}"))
                else:
                    rows = [o[offset : offset + n] for o in outputs] if self.batched else outputs
                    result = BatchResult(rows, started - item.enqueued, compute_s, total)
                    item.future.set_result(result)
            offset += n
        self._settled(settled)
        if self.on_batch is not None:
            self.on_batch(total, compute_s)

    async def drain(self) -> None:
        """Wait until nothing is pending, then stop the runner thread."""
        await self._idle.wait()
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            await asyncio.to_thread(thread.join, 30)

    # ---- runner thread ---------------------------------------------------------------
    def _run(self) -> None:
        carry: collections.deque[Any] = collections.deque()
        while True:
            if not carry:
                chunk = self._queue.get()
                if chunk is _STOP:
                    return
                carry.extend(chunk)
            first = carry.popleft()
            if first.future.done():
                continue
            batch = self._collect(first, carry)
            self._execute(batch)

    def _next(self, carry: collections.deque[Any], deadline: float) -> Any:
        if not carry:
            try:
                remaining = deadline - time.perf_counter()
                chunk = (
                    self._queue.get_nowait()
                    if remaining <= 0
                    else self._queue.get(timeout=remaining)
                )
            except queue.Empty:
                return None
            if chunk is _STOP:
                self._queue.put(_STOP)  # seen again by _run once this batch is done
                return None
            carry.extend(chunk)
        return carry.popleft()

    def _collect(self, first: Pending, carry: collections.deque[Any]) -> list[Pending]:
        batch = [first]
        if not self.batched:
            return batch
        size, limit = first.n, self.limit
        deadline = first.enqueued + self.config.max_queue_delay_ms / 1000.0
        while size < limit:
            item = self._next(carry, deadline)
            if item is None:
                break
            if item.key != first.key or size + item.n > limit:
                carry.appendleft(item)
                break
            if item.future.done():
                continue
            batch.append(item)
            size += item.n
        return batch

    def _execute(self, batch: list[Pending]) -> None:
        started = time.perf_counter()
        if len(batch) == 1:
            feeds = batch[0].inputs
        else:
            feeds = {
                name: np.concatenate([item.inputs[name] for item in batch])
                for name in self.input_names
            }
        outputs: list[np.ndarray] | None = None
        error: str | None = None
        try:
            if self.adapter is not None:
                outputs = self.adapter.run(self.session, feeds)
            else:
                outputs = self.session.run(None, feeds)
        except Exception as exc:  # ORT errors after validation: report, keep serving
            log.error(
                "model %s: ONNX Runtime failed on a batch of %d: %s", self.label, len(batch), exc
            )
            error = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        compute_s = time.perf_counter() - started
        with contextlib.suppress(RuntimeError):  # a closed loop: the process is exiting
            self.loop.call_soon_threadsafe(self._deliver, batch, outputs, error, started, compute_s)
