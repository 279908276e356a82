"""Dynamic batching with a real ONNX Runtime session, in-process: merge, 429, 504, drain."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from scaledl.errors import DeadlineExceededError, OverloadedError
from scaledl.export.runtime import create_session
from scaledl.package import open_package
from scaledl.serve.batching import Batcher
from scaledl.serve.settings import BatchingConfig


def make_batcher(package: Path, loop: asyncio.AbstractEventLoop, **config: float) -> Batcher:
    session = create_session(open_package(package).onnx_path, threads=1)
    return Batcher(session, ["input"], True, BatchingConfig(**config), loop, "digits/1")


def test_requests_merge_into_batches_and_get_their_own_rows(digits_package: Path) -> None:
    async def scenario() -> None:
        batches: list[int] = []
        batcher = make_batcher(digits_package, asyncio.get_running_loop(), max_queue_delay_ms=200)
        batcher.on_batch = lambda samples, seconds: batches.append(samples)
        rng = np.random.default_rng(0)
        xs = [rng.normal(size=(n, 1, 8, 8)).astype(np.float32) for n in (1, 3, 2, 1)]
        results = await asyncio.gather(*(batcher.submit({"input": x}, len(x), 10) for x in xs))
        reference = batcher.session.run(None, {"input": np.concatenate(xs)})[0]
        rows = np.concatenate([r.outputs[0] for r in results])
        np.testing.assert_allclose(rows, reference, atol=1e-6)
        assert batches == [7] and all(r.batch_size == 7 for r in results)
        await batcher.drain()

    asyncio.run(scenario())


def test_full_queue_is_429_and_late_answers_are_504(digits_package: Path) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        batcher = make_batcher(digits_package, loop, max_queue=2, max_queue_delay_ms=300)
        x = np.zeros((1, 1, 8, 8), np.float32)
        first = batcher.submit({"input": x}, 1, 10)
        second = batcher.submit({"input": x}, 1, 0.05)
        with pytest.raises(OverloadedError):
            batcher.submit({"input": x}, 1, 10)
        with pytest.raises(DeadlineExceededError):
            await second
        assert (await first).outputs[0].shape == (1, 10)
        assert batcher.pending == 0
        await batcher.drain()

    asyncio.run(scenario())


def test_a_cancelled_request_is_no_longer_pending(digits_package: Path) -> None:
    """A caller that gives up (a gRPC deadline, a client gone) frees its queue slot at once."""

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        batcher = make_batcher(digits_package, loop, max_queue=1, max_queue_delay_ms=300)
        x = np.zeros((1, 1, 8, 8), np.float32)
        waiting = asyncio.ensure_future(batcher.submit({"input": x}, 1, 10))
        await asyncio.sleep(0.05)
        waiting.cancel()
        await asyncio.sleep(0)
        assert batcher.pending == 0
        assert (await batcher.submit({"input": x}, 1, 10)).outputs[0].shape == (1, 10)
        await asyncio.wait_for(batcher.drain(), 10)

    asyncio.run(scenario())


def test_several_instances_answer_correctly(digits_package: Path) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        session = create_session(open_package(digits_package).onnx_path, threads=1)
        config = BatchingConfig(instances=2, max_batch_size=4)
        batcher = Batcher(session, ["input"], True, config, loop, "digits/1", batch_limit=2)
        xs = [np.full((1, 1, 8, 8), i, np.float32) for i in range(9)]
        results = await asyncio.gather(*(batcher.submit({"input": x}, 1, 10) for x in xs))
        for x, result in zip(xs, results):
            np.testing.assert_allclose(
                result.outputs[0], session.run(None, {"input": x})[0], atol=1e-6
            )
            assert result.batch_size <= 2
        await batcher.drain()

    asyncio.run(scenario())


def test_batch_cap_is_measured_at_load(digits_package: Path) -> None:
    from scaledl.serve.model import load_version, preferred_batch
    from scaledl.serve.settings import ServeSettings

    assert preferred_batch({1: 1.0, 2: 1.05, 4: 2.0, 8: 1.9}) == 2
    assert preferred_batch({1: 0.04, 2: 0.02, 4: 0.01, 8: 0.0051, 16: 0.005}) == 16
    settings = ServeSettings(source=digits_package, no_auth=True, batching={"max_batch_size": 8})
    mv = load_version("digits", "1", digits_package, settings)
    assert sorted(mv.batch_timings) == [1, 2, 4, 8]
    assert mv.preferred_batch == preferred_batch(mv.batch_timings)
    settings = ServeSettings(
        source=digits_package,
        no_auth=True,
        batching={"max_batch_size": 8, "tune_batch_size": False},
    )
    assert load_version("digits", "1", digits_package, settings).preferred_batch == 8
