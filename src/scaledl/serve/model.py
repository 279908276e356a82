"""One loaded model version: its verified package, session, signature and batcher.

Loading is all-or-nothing and happens off the event loop: verify checksums (and the signature
when `SCALEDL_SIGNING_KEY` is set, which also refuses unsigned packages), create the session,
compare the manifest signature with the graph, and run a warm-up batch. Only a version that
passed all of that is ever routed to, which is what makes hot swaps free of failed requests.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scaledl.config.serve import BatchingConfig, ServeSettings
from scaledl.contract import Manifest
from scaledl.errors import PackageError, UnavailableError
from scaledl.modalities.base import ServingAdapter
from scaledl.package import Package, open_package, signing_key_from_env
from scaledl.serve.batching import Batcher, BatchObserver
from scaledl.serve.codec import DTYPES
from scaledl.serve.engine import preferred_engine
from scaledl.serve.signature import Signature, check_against_graph, parse_signature

log = logging.getLogger(__name__)


@dataclass
class ModelVersion:
    model: str
    version: str
    package: Package
    session: Any
    signature: Signature
    batching: BatchingConfig
    loaded_at: float = field(default_factory=time.time)
    state: str = "READY"  # READY → DRAINING → UNLOADED
    batcher: Batcher | None = None
    preferred_batch: int = 1
    batch_timings: dict[int, float] = field(default_factory=dict)  # size → ms per sample
    # served inputs → graph inputs (text: strings → token ids), run in the batch runner
    adapter: ServingAdapter | None = None
    engine: str = "onnxruntime"  # what runs the graph (serve/engine.py)

    @property
    def label(self) -> str:
        return f"{self.model}/{self.version}"

    @property
    def ready(self) -> bool:
        return self.state == "READY"

    @property
    def manifest(self) -> Manifest:
        return self.package.manifest

    def start(self, loop: asyncio.AbstractEventLoop, on_batch: BatchObserver | None) -> None:
        self.batcher = Batcher(
            self.session,
            self.signature.input_names,
            self.signature.batched,
            self.batching,
            loop,
            self.label,
            on_batch,
            batch_limit=self.preferred_batch,
            free_dims=any(-1 in t.shape[1:] for t in self.signature.inputs),
            adapter=self.adapter,
        )

    def check_inputs(self, inputs: dict[str, np.ndarray]) -> None:
        """The modality's own checks of served inputs (text: no empty or oversized strings)."""
        if self.adapter is not None:
            self.adapter.check(inputs)

    def submit(self, inputs: dict[str, np.ndarray], n: int, timeout_s: float) -> Any:
        if self.state != "READY" or self.batcher is None:
            raise UnavailableError(f"model {self.label} is {self.state.lower()}; retry")
        return self.batcher.submit(inputs, n, timeout_s)

    @property
    def pending(self) -> int:
        return self.batcher.pending if self.batcher else 0

    async def drain(self) -> None:
        """Stop taking requests, let pending ones finish, then release the session."""
        self.state = "DRAINING"
        if self.batcher is not None:
            await self.batcher.drain()
        self.state = "UNLOADED"
        self.session = None


def verify_version(path: Path) -> Package:
    """Open a package, checking every sha256 (and its signature when a key is set)."""
    key = signing_key_from_env()
    return open_package(path, verify=True, key=key, require_signature=bool(key) or None)


def load_version(model: str, version: str, path: Path, settings: ServeSettings) -> ModelVersion:
    """Verify, open and warm a package (blocking: call it in a thread)."""
    from scaledl.export.runtime import create_session, signature_of

    package = verify_version(path)
    source = f"{model}/{version}"  # messages reach clients: no server paths in them
    signature = parse_signature(package.manifest.signature.model_dump(), source)
    graph_signature = package.manifest.graph_signature
    graph = (
        parse_signature(graph_signature.model_dump(), source)
        if graph_signature is not None
        else signature
    )
    adapter = serving_adapter(package, source) if graph_signature is not None else None
    spin = "1" if settings.ort_spinning else "0"
    try:
        session = create_session(
            package.onnx_path,
            threads=settings.intra_threads(),
            inter_threads=settings.ort_inter_threads,
            config={
                "session.intra_op.allow_spinning": spin,
                "session.inter_op.allow_spinning": spin,
            },
        )
    except Exception as exc:
        raise PackageError(f"{source}: ONNX Runtime cannot load model.onnx ({exc})") from None
    check_against_graph(graph, signature_of(session), source)
    session, engine = preferred_engine(
        package, session, _feeds(graph, 2), settings.intra_threads(), source
    )
    batching = settings.batching_for(model)
    largest = batching.max_batch_size if signature.batched else 1
    runner = Runner(session, adapter)
    _run(runner, signature, 1, source)  # warm-up: failures show at load, not on a request
    _run(runner, signature, largest, source)
    mv = ModelVersion(
        model, version, package, session, signature, batching, adapter=adapter, engine=engine
    )
    mv.preferred_batch = largest
    if batching.tune_batch_size and largest > 1:
        mv.batch_timings = measure_batches(runner, signature, largest, source)
        mv.preferred_batch = preferred_batch(mv.batch_timings)
        log.info(
            "model %s: %s ms per sample by batch size; batches of up to %d",
            mv.label,
            {k: round(v, 4) for k, v in mv.batch_timings.items()},
            mv.preferred_batch,
            extra={"model": model, "version": version},
        )
    return mv


def serving_adapter(package: Package, source: str) -> ServingAdapter:
    """The package modality's conversion of served inputs to the graph's own inputs."""
    from scaledl.modalities import modality_of

    spec = package.manifest.preprocessing
    adapter = modality_of(spec).serving_adapter(spec) if spec is not None else None
    if adapter is None:
        raise PackageError(
            f"{source}: the manifest gives the graph its own signature, but its preprocessing "
            "says nothing of how served inputs become graph inputs"
        )
    return adapter


class Runner:
    """`session.run(None, feeds)`, through the modality's adapter when it has one."""

    def __init__(self, session: Any, adapter: ServingAdapter | None) -> None:
        self.session = session
        self.adapter = adapter

    def run(self, _: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        if self.adapter is not None:
            return self.adapter.run(self.session, feeds)
        return list(self.session.run(None, feeds))


WARM_UP_TEXT = "a short sentence of about the length people write"


def _feeds(signature: Signature, size: int) -> dict[str, np.ndarray]:
    feeds = {}
    for spec in signature.inputs:
        shape = [
            size if i == 0 and signature.batched else max(d, 1) for i, d in enumerate(spec.shape)
        ]
        if spec.datatype == "BYTES":
            feeds[spec.name] = np.full(shape, WARM_UP_TEXT, dtype=object)
        else:
            feeds[spec.name] = np.zeros(shape, dtype=DTYPES[spec.datatype])
    return feeds


def _run(session: Any, signature: Signature, size: int, source: str) -> float:
    feeds = _feeds(signature, size)
    try:
        start = time.perf_counter()
        session.run(None, feeds)
        return time.perf_counter() - start
    except Exception as exc:
        raise PackageError(f"{source}: warm-up inference failed ({exc})") from None


def measure_batches(
    session: Any, signature: Signature, largest: int, source: str, budget_s: float = 1.5
) -> dict[int, float]:
    """Milliseconds per sample at batch sizes 1, 2, 4 … `largest` (best of several runs).

    On some CPUs a bigger batch is slower per sample (its activations leave the cache), so the
    batch cap is measured rather than assumed. Sizes are timed in interleaved rounds and the
    best run of each kept, so a burst of load from other processes cannot single out one size;
    the time spent is bounded by `budget_s` (at least two rounds run).
    """
    sizes = sorted({min(1 << i, largest) for i in range(largest.bit_length() + 1)})
    best: dict[int, float] = {}
    deadline = time.perf_counter() + budget_s
    for round_ in range(5):
        for size in sizes:
            seconds = _run(session, signature, size, source) / size * 1000
            best[size] = min(best.get(size, seconds), seconds)
        if round_ >= 1 and time.perf_counter() > deadline:
            break
    return best


def preferred_batch(timings: dict[int, float], slack: float = 1.1) -> int:
    """The largest measured batch whose per-sample time is within `slack` of the best."""
    best = min(timings.values())
    return max(size for size, ms in timings.items() if ms <= best * slack)
