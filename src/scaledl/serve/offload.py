"""CPU work that must not run on the event loop: decoding big bodies and images, feedback
batches, rendering metrics.

One event loop serves every connection of a worker, so a request that computes on it for
100 ms delays every other client (health checks included) by 100 ms. Work whose cost grows
with the request goes to a small thread pool instead; the pool is bounded twice: `threads`
jobs run at once and at most `max_waiting` more wait, beyond which a request gets 429. Image
decoders, zlib and ONNX Runtime release the GIL, so those jobs really run beside the loop;
JSON parsing does not: one `orjson.loads` of a megabyte of nested lists holds the GIL for
~100 ms, which would stall the loop even from a thread. Big JSON documents are therefore
parsed in a separate process (`run_process`: same bounds, results come back as numpy arrays),
and the JSON a request may send is capped as well (`--max-json-mb`).

    result = await server.offload.run(fn, body)          # a thread: GIL-releasing work
    request = await server.offload.run_process(parse, body)   # a process: JSON parsing
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from scaledl.errors import OverloadedError, UnavailableError

T = TypeVar("T")
INLINE_BYTES = 64 * 1024  # bodies up to this size decode on the loop (< 1 ms): no thread hop
PARSER_PROCESSES = 1  # JSON parsing is a small share of the work; one process per worker


class Offloader:
    def __init__(self, threads: int, max_waiting: int | None = None) -> None:
        self.threads = threads
        self.max_waiting = max_waiting if max_waiting is not None else 16 * threads
        self.jobs = 0  # running or waiting; touched on the event loop thread only
        self.processes = PARSER_PROCESSES
        self._executor: ThreadPoolExecutor | None = None
        self._parsers: ProcessPoolExecutor | None = None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on a pool thread; 429 when too many jobs are already waiting."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="scaledl-cpu")
        return await self._submit(self._executor, fn, *args)

    async def run_process(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in a parser process (`fn` and its arguments must pickle)."""
        try:
            return await self._submit(self.parsers(), fn, *args)
        except BrokenProcessPool:  # a parser died (killed, out of memory): start new ones
            self._parsers = None
            raise UnavailableError("a request parser process stopped; retry") from None

    def parsers(self) -> ProcessPoolExecutor:
        if self._parsers is None:
            import multiprocessing

            context = multiprocessing.get_context("spawn")  # never fork a threaded server
            self._parsers = ProcessPoolExecutor(self.processes, mp_context=context)
        return self._parsers

    def warm(self) -> None:
        """Start the parser processes now (blocking: call it in a thread at start-up)."""
        futures = [self.parsers().submit(int) for _ in range(self.processes)]
        for future in futures:
            future.result()

    async def _submit(self, executor: Executor, fn: Callable[..., T], *args: Any) -> T:
        if self.jobs >= self.threads + self.max_waiting:
            raise OverloadedError(
                f"the server is busy with {self.jobs} decoding jobs; retry in a moment"
            )
        self.jobs += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)
        finally:
            self.jobs -= 1

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        if self._parsers is not None:
            # Parsers hold no state: end them now. Left to `shutdown(wait=False)` alone, a
            # parser could stay blocked on its empty queue and keep the server from exiting.
            processes = list(getattr(self._parsers, "_processes", {}).values())
            self._parsers.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                process.terminate()
        self._executor = self._parsers = None
