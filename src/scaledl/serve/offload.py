"""CPU work that must not run on the event loop: decoding big bodies and images, feedback
batches, rendering metrics.

One event loop serves every connection of a worker, so a request that computes on it for
100 ms delays every other client (health checks included) by 100 ms. Work whose cost grows
with the request goes to a small thread pool instead; the pool is bounded twice: `threads`
jobs run at once and at most `max_waiting` more wait, beyond which a request gets 429. Image
decoders, zlib and ONNX Runtime release the GIL, so those jobs really run beside the loop;
pure-Python parsing holds it, which is why the JSON a request may send is capped as well
(`--max-json-mb`): every single step stays short.

    result = await server.offload.run(parse, body)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from scaledl.errors import OverloadedError

T = TypeVar("T")
INLINE_BYTES = 64 * 1024  # bodies up to this size decode on the loop (< 1 ms): no thread hop


class Offloader:
    def __init__(self, threads: int, max_waiting: int | None = None) -> None:
        self.threads = threads
        self.max_waiting = max_waiting if max_waiting is not None else 16 * threads
        self.jobs = 0  # running or waiting; touched on the event loop thread only
        self._executor: ThreadPoolExecutor | None = None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on a pool thread; 429 when too many jobs are already waiting."""
        if self.jobs >= self.threads + self.max_waiting:
            raise OverloadedError(
                f"the server is busy with {self.jobs} decoding jobs; retry in a moment"
            )
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="scaledl-cpu")
        self.jobs += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        finally:
            self.jobs -= 1

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
