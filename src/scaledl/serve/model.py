"""One loaded model version: its verified package, ONNX Runtime session, signature and batcher.

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

from scaledl.errors import PackageError, UnavailableError
from scaledl.package import Package, open_package, signing_key_from_env
from scaledl.serve.batching import Batcher, BatchObserver
from scaledl.serve.codec import DTYPES
from scaledl.serve.settings import BatchingConfig, ServeSettings
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

    @property
    def label(self) -> str:
        return f"{self.model}/{self.version}"

    @property
    def ready(self) -> bool:
        return self.state == "READY"

    @property
    def manifest(self) -> dict[str, Any]:
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
        )

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


def load_version(model: str, version: str, path: Path, settings: ServeSettings) -> ModelVersion:
    """Verify, open and warm a package (blocking: call it in a thread)."""
    from scaledl.export.runtime import create_session, signature_of

    key = signing_key_from_env()
    package = open_package(path, verify=True, key=key, require_signature=bool(key) or None)
    source = f"{model}/{version} ({path})"
    raw = package.manifest.get("signature")
    if not isinstance(raw, dict):
        raise PackageError(f"{source}: manifest.json has no signature")
    signature = parse_signature(raw, source)
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
    check_against_graph(signature, signature_of(session), source)
    batching = settings.batching_for(model)
    _warm_up(session, signature, batching.max_batch_size, source)
    return ModelVersion(model, version, package, session, signature, batching)


def _warm_up(session: Any, signature: Signature, max_batch: int, source: str) -> None:
    """Run the graph once at batch 1 and at the largest batch, so failures show at load."""
    sizes = [1, max_batch] if signature.batched and max_batch > 1 else [1]
    for size in sizes:
        feeds = {}
        for spec in signature.inputs:
            shape = [
                size if i == 0 and signature.batched else max(d, 1)
                for i, d in enumerate(spec.shape)
            ]
            dtype = DTYPES[spec.datatype]
            if spec.datatype == "BYTES":
                feeds[spec.name] = np.full(shape, "", dtype=object)
            else:
                feeds[spec.name] = np.zeros(shape, dtype=dtype)
        try:
            session.run(None, feeds)
        except Exception as exc:
            raise PackageError(f"{source}: warm-up inference failed ({exc})") from None
