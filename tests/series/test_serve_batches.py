"""A request of more windows than one batch is answered batch by batch: every window still gets
its own forecast, equal to the forecast it gets alone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from scaledl.config.serve import BatchingConfig
from scaledl.export.runtime import create_session
from scaledl.package import open_package
from scaledl.serve.batching import Batcher
from tests.series.conftest import series_values


def test_windows_split_into_batches_keep_their_forecasts(series_package: Path) -> None:
    pkg = open_package(series_package)
    values = series_values(900)
    windows = np.stack([values[i : i + 48] for i in range(0, 300, 30)]).astype(np.float32)
    session = create_session(pkg.onnx_path, threads=1)
    alone = np.concatenate([session.run(None, {"input": w[None]})[0] for w in windows])

    async def scenario() -> list[int]:
        batches: list[int] = []
        config = BatchingConfig(max_batch_size=4, max_queue_delay_ms=1)
        batcher = Batcher(session, ["input"], True, config, asyncio.get_running_loop(), "s/1")
        batcher.on_batch = lambda samples, seconds: batches.append(samples)
        result = await batcher.submit({"input": windows}, len(windows), 30)
        np.testing.assert_allclose(result.outputs[0], alone, rtol=1e-5, atol=1e-4)
        await batcher.drain()
        return batches

    assert len(windows) == 10
    assert asyncio.run(scenario()) == [4, 4, 2]
