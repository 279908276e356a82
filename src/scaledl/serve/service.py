"""The inference pipeline shared by /infer and /predict: route → validate → batch → answer.

Shadow traffic: a request addressed to a model (not to an explicit version) is also queued on
the model's shadow version, if any. The client gets the primary answer as soon as it is ready;
the shadow answer is compared with it afterwards (top-class agreement, largest absolute
difference), recorded in metrics, the admin status and the extension records — never returned.
A full shadow queue skips the copy instead of slowing or failing the real request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from scaledl.config.serve import ServeSettings
from scaledl.errors import ScaledlError
from scaledl.serve.batching import BatchResult
from scaledl.serve.extensions import ExtensionDispatcher, InferenceRecord
from scaledl.serve.manager import ModelManager
from scaledl.serve.metrics import ServerMetrics
from scaledl.serve.model import ModelVersion
from scaledl.serve.offload import Offloader
from scaledl.serve.signature import validate_inputs

log = logging.getLogger(__name__)
Inputs = dict[str, np.ndarray]
Prepare = Callable[[ModelVersion], Inputs]


def prepare_pair(
    prepare: Prepare, chosen: ModelVersion, shadow: ModelVersion | None
) -> tuple[Inputs, Inputs | None]:
    """The chosen version's inputs, and the shadow's (None when it cannot take the request)."""
    inputs = prepare(chosen)
    if shadow is None:
        return inputs, None
    try:
        return inputs, prepare(shadow)
    except ScaledlError:
        return inputs, None


@dataclass(slots=True)
class Answer:
    version: ModelVersion
    result: BatchResult
    inputs: dict[str, np.ndarray]


class InferenceService:
    def __init__(
        self,
        settings: ServeSettings,
        manager: ModelManager,
        metrics: ServerMetrics,
        dispatcher: ExtensionDispatcher,
        offload: Offloader,
    ) -> None:
        self.settings = settings
        self.manager = manager
        self.metrics = metrics
        self.dispatcher = dispatcher
        self.offload = offload

    def select(self, model: str, version: str | None) -> tuple[ModelVersion, ModelVersion | None]:
        """The version to answer with, and the shadow to copy the request to (if any)."""
        if version is not None:
            return self.manager.version(model, version), None
        route = self.manager.route(model)
        return route.pick(), route.shadow

    async def infer(
        self,
        model: str,
        version: str | None,
        prepare: Prepare,
        timeout_s: float | None,
        request_id: str,
        received_at: float,
        raws: dict[str, np.ndarray] | None = None,
        offload: bool = False,
    ) -> Answer:
        """Answer one request; `prepare(version)` builds that version's graph inputs.

        `raws` is filled by `prepare` with each version's raw rows (`/predict`), so a shadow's
        record carries them too. With `offload`, `prepare` runs on the CPU pool (image
        decoding); a version that started draining meanwhile is picked again, so a hot swap
        still fails no request.
        """
        chosen, shadow, inputs, shadow_inputs = await self._prepare(
            model, version, prepare, offload
        )
        limits = self.settings
        n = validate_inputs(
            chosen.signature, inputs, limits.allow_nonfinite, limits.max_samples_per_request
        )
        chosen.check_inputs(inputs)
        limit = chosen.batching.request_timeout_s
        timeout = min(timeout_s, limit) if timeout_s else limit
        future = chosen.submit(inputs, n, timeout)
        queue_time, queue_depth = self.metrics.queue(chosen.model, chosen.version)
        queue_depth.set(chosen.pending)
        copy = None
        if shadow is not None:
            copy = self._submit_shadow(shadow, shadow_inputs, timeout)
        try:
            result: BatchResult = await future
        except BaseException:
            if copy is not None:
                copy[0].add_done_callback(_retrieve)
            raise
        finally:
            queue_depth.set(chosen.pending)
        queue_time.observe(result.queue_s)
        if copy is not None and shadow is not None:
            shadow_future, copied = copy
            primary = result.outputs
            shadow_raw = raws.get(shadow.version) if raws else None
            shadow_future.add_done_callback(
                lambda f: self._compare(
                    shadow, primary, f, copied, request_id, received_at, shadow_raw
                )
            )
        return Answer(chosen, result, inputs)

    async def _prepare(
        self, model: str, version: str | None, prepare: Prepare, offload: bool
    ) -> tuple[ModelVersion, ModelVersion | None, Inputs, Inputs | None]:
        """The versions to use and their inputs (on the CPU pool with `offload`)."""
        for _ in range(3):
            chosen, shadow = self.select(model, version)
            if not offload:
                return (chosen, shadow, *prepare_pair(prepare, chosen, shadow))
            pair = await self.offload.run(prepare_pair, prepare, chosen, shadow)
            if chosen.ready:  # nothing was awaited between this check and the submit
                return (chosen, shadow if shadow is not None and shadow.ready else None, *pair)
        return (chosen, None, *pair)  # still swapping after three tries: submit answers 503

    def _submit_shadow(
        self, shadow: ModelVersion, inputs: Inputs | None, timeout: float
    ) -> tuple[asyncio.Future[Any], Inputs] | None:
        try:
            if inputs is None:
                raise ScaledlError("the shadow cannot take this request")
            n = validate_inputs(
                shadow.signature,
                inputs,
                self.settings.allow_nonfinite,
                self.settings.max_samples_per_request,
            )
            shadow.check_inputs(inputs)
            return shadow.submit(inputs, n, timeout), inputs
        except ScaledlError:
            self.metrics.shadow_dropped.labels(shadow.model, shadow.version).inc()
            stats = self.manager.shadow_stats.get(shadow.model)
            if stats is not None:
                stats.dropped += 1
            return None

    def _compare(
        self,
        shadow: ModelVersion,
        primary: list[np.ndarray],
        future: asyncio.Future[Any],
        inputs: dict[str, np.ndarray],
        request_id: str,
        received_at: float,
        raw_inputs: np.ndarray | None,
    ) -> None:
        if future.cancelled() or future.exception() is not None:
            self.metrics.shadow_dropped.labels(shadow.model, shadow.version).inc()
            return
        result: BatchResult = future.result()
        diff, disagree = compare_outputs(primary, result.outputs)
        labels = (shadow.model, shadow.version)
        self.metrics.shadow_requests.labels(*labels).inc()
        if disagree:
            self.metrics.shadow_disagreements.labels(*labels).inc()
        if diff is not None:
            self.metrics.shadow_diff.labels(*labels).observe(diff)
        stats = self.manager.shadow_stats.get(shadow.model)
        if stats is not None and stats.version == shadow.version:
            stats.compared += 1
            stats.disagreements += int(disagree)
            stats.max_abs_diff_sum += diff or 0.0
        if self.dispatcher.active:
            names = shadow.signature.output_names
            self.dispatcher.inference(
                InferenceRecord(
                    model=shadow.model,
                    version=shadow.version,
                    request_id=request_id,
                    inputs=inputs,
                    outputs=dict(zip(names, result.outputs)),
                    received_at=received_at,
                    latency_s=time.time() - received_at,
                    raw_inputs=raw_inputs,
                )
            )

    def record(
        self,
        answer: Answer,
        request_id: str,
        received_at: float,
        latency_s: float,
        raw_inputs: np.ndarray | None = None,
    ) -> None:
        """Hand the answered request to the extensions (queued; returns at once)."""
        if not self.dispatcher.active:
            return
        mv = answer.version
        self.dispatcher.inference(
            InferenceRecord(
                model=mv.model,
                version=mv.version,
                request_id=request_id,
                inputs=answer.inputs,
                outputs=dict(zip(mv.signature.output_names, answer.result.outputs)),
                received_at=received_at,
                latency_s=latency_s,
                raw_inputs=raw_inputs,
            )
        )


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a shadow's outcome as seen when nobody compares it (its primary failed)."""
    if not future.cancelled():
        future.exception()


def compare_outputs(
    primary: list[np.ndarray], shadow: list[np.ndarray]
) -> tuple[float | None, bool]:
    """Largest absolute difference of the first output, and whether any row's top class differs."""
    a, b = primary[0], shadow[0]
    if a.shape != b.shape or a.dtype.kind not in "fiub" or b.dtype.kind not in "fiub":
        return None, True
    if a.size == 0:
        return 0.0, False
    diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
    disagree = bool(a.ndim == 2 and a.shape[1] > 1 and (a.argmax(1) != b.argmax(1)).any())
    return diff, disagree
