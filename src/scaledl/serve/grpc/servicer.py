"""The `inference.GRPCInferenceService` methods, on the same server objects as the HTTP routes.

Every call goes through what HTTP uses: the API keys (`authorization: Bearer …` or
`x-api-key` metadata, the same scopes), the model manager's routes (versions, canary, shadow),
the shared `InferenceService` (signature checks, NaN/Inf policy, batching, queues, timeouts),
the same Prometheus metrics (endpoint `grpc_infer`) and the same extension records. A
`ScaledlError` becomes the gRPC status that says the same thing (`STATUS`), with its message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import json_format

import scaledl
from scaledl.errors import DeadlineExceededError, ScaledlError
from scaledl.serve.asgi import new_request_id
from scaledl.serve.codec import BadRequest
from scaledl.serve.context import (
    KeyGate,
    Lifecycle,
    ServedModels,
    loaded_versions,
    metric_labels,
    pick,
)
from scaledl.serve.grpc import tensors
from scaledl.serve.grpc.protos import grpc_predict_v2_pb2 as pb
from scaledl.serve.grpc.protos import triton_extras_pb2 as tx
from scaledl.serve.metrics import ServerMetrics
from scaledl.serve.routes import EXTENSIONS, model_metadata, triton_config
from scaledl.serve.service import InferenceService
from scaledl.serve.settings import ServeSettings

log = logging.getLogger("scaledl.serve.access")
SERVICE = "inference.GRPCInferenceService"
ENDPOINT = "grpc_infer"  # the `endpoint` label of the request metrics
INFER_PATH = f"/{SERVICE}/ModelInfer"
T = TypeVar("T")

# The HTTP status a ScaledlError carries → the gRPC status meaning the same.
STATUS: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.FAILED_PRECONDITION,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    499: grpc.StatusCode.CANCELLED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


MAX_DETAILS = 1000  # characters of an error message sent back (names in it are the client's)


def status_of(exc: ScaledlError) -> grpc.StatusCode:
    return STATUS.get(exc.http_status, grpc.StatusCode.INTERNAL)


def details(exc: ScaledlError) -> str:
    """The message for the status: gRPC sends it as metadata, which is size-limited."""
    text = exc.message
    return text if len(text) <= MAX_DETAILS else text[:MAX_DETAILS] + "…"


class InferenceServicer:
    def __init__(
        self,
        *,
        gate: KeyGate,
        lifecycle: Lifecycle,
        models: ServedModels,
        service: InferenceService,
        metrics: ServerMetrics,
        settings: ServeSettings,
        extension_names: list[str],
    ) -> None:
        self.gate = gate
        self.lifecycle = lifecycle
        self.manager = models
        self.service = service
        self.metrics = metrics
        self.settings = settings
        self.extension_names = extension_names

    # ---- health: open, as on HTTP ------------------------------------------------------
    async def ServerLive(self, request: Any, context: Any) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: Any) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.lifecycle.ready)

    # ---- metadata: an `infer` key ------------------------------------------------------
    async def ModelReady(self, request: Any, context: Any) -> pb.ModelReadyResponse:
        def answer() -> pb.ModelReadyResponse:
            mv = pick(self.manager, request.name, request.version)
            return pb.ModelReadyResponse(ready=mv.ready and not self.lifecycle.draining)

        return await self._guarded(context, "infer", answer)

    async def ServerMetadata(self, request: Any, context: Any) -> pb.ServerMetadataResponse:
        def answer() -> pb.ServerMetadataResponse:
            return pb.ServerMetadataResponse(
                name="scaledl",
                version=scaledl.__version__,
                extensions=EXTENSIONS + self.extension_names,
            )

        return await self._guarded(context, "infer", answer)

    async def ModelMetadata(self, request: Any, context: Any) -> pb.ModelMetadataResponse:
        def answer() -> pb.ModelMetadataResponse:
            mv = pick(self.manager, request.name, request.version)
            doc = model_metadata(request.name, mv, loaded_versions(self.manager, request.name))
            return json_format.ParseDict(doc, pb.ModelMetadataResponse())

        return await self._guarded(context, "infer", answer)

    async def ModelConfig(self, request: Any, context: Any) -> tx.ModelConfigResponse:
        def answer() -> tx.ModelConfigResponse:
            mv = pick(self.manager, request.name, request.version)
            doc = triton_config(request.name, mv, self.manager.current(request.name).policy)
            if not all(isinstance(v, int) for v in _specific_versions(doc)):
                doc["version_policy"] = {"latest": {"num_versions": 1}}  # proto: int64 only
            return tx.ModelConfigResponse(config=json_format.ParseDict(doc, tx.ModelConfig()))

        return await self._guarded(context, "infer", answer)

    # ---- repository: an `admin` key ----------------------------------------------------
    async def RepositoryIndex(self, request: Any, context: Any) -> tx.RepositoryIndexResponse:
        def answer() -> tx.RepositoryIndexResponse:
            fields = ("name", "version", "state", "reason")
            rows = [{k: r[k] for k in fields if k in r} for r in self.manager.index()]
            if request.ready:
                rows = [r for r in rows if r["state"] == "READY"]
            return tx.RepositoryIndexResponse(
                models=[tx.RepositoryIndexResponse.ModelIndex(**r) for r in rows]
            )

        return await self._guarded(context, "admin", answer)

    # ---- inference ---------------------------------------------------------------------
    async def ModelInfer(self, request: Any, context: Any) -> pb.ModelInferResponse:
        started = time.perf_counter()
        received_at = time.time()
        ctx: dict[str, Any] = {"request_id": None, "version": request.model_version, "key_id": None}
        self.metrics.inflight.inc()
        error: ScaledlError | None = None
        answer: Any = None
        try:
            response, answer = await self._infer(request, context, ctx, received_at)
        except ScaledlError as exc:
            error = exc
        except asyncio.CancelledError:  # the client went away or its deadline passed
            self._account(request.model_name, ctx, grpc.StatusCode.CANCELLED, 499, started)
            raise
        except Exception:
            log.exception("unexpected error in %s", INFER_PATH, extra=_log_fields(ctx, "INTERNAL"))
            error = _Internal("internal server error")
        finally:
            self.metrics.inflight.dec()
        request_id = ctx["request_id"] = ctx["request_id"] or new_request_id()
        trailer = (("x-request-id", request_id),)
        if error is not None:
            code = status_of(error)
            self._account(request.model_name, ctx, code, error.http_status, started)
            await context.abort(code, details(error), trailing_metadata=trailer)
        context.set_trailing_metadata(trailer)
        latency = self._account(request.model_name, ctx, grpc.StatusCode.OK, 200, started)
        self.service.record(answer, request_id, received_at, latency)
        return response

    async def _infer(
        self, request: Any, context: Any, ctx: dict[str, Any], received_at: float
    ) -> tuple[pb.ModelInferResponse, Any]:
        entry = self._authorize(context, "infer")
        ctx["key_id"] = entry.id if entry else None
        decoded, raw = tensors.decode_request(request)
        ctx["request_id"] = request_id = decoded.request_id or new_request_id()
        remaining = context.time_remaining()  # the client's gRPC deadline, if it set one
        if remaining is not None and remaining <= 0:
            raise DeadlineExceededError("the call's deadline passed before it could be queued")
        timeout = _earliest(decoded.timeout_s, remaining)
        model = request.model_name
        answer = await self.service.infer(
            model,
            request.model_version or None,
            lambda mv: decoded.inputs,
            timeout,
            request_id,
            received_at,
        )
        mv = answer.version
        ctx["version"] = mv.version
        names = mv.signature.output_names
        wanted = decoded.outputs if decoded.outputs is not None else names
        unknown = [n for n in wanted if n not in names]
        if unknown:
            raise BadRequest(f"unknown output {unknown[0]!r}; the model's outputs are {names}")
        arrays = dict(zip(names, answer.result.outputs))
        outputs = [(n, arrays[n]) for n in wanted]
        return tensors.encode_response(model, mv.version, request_id, outputs, raw), answer

    def _account(
        self, model: str, ctx: dict[str, Any], code: grpc.StatusCode, status: int, started: float
    ) -> float:
        """Metrics for every call (failures by HTTP-equivalent status); a log line for errors."""
        latency = time.perf_counter() - started
        # label values come from the server's own names only: a client's made-up version
        # must not grow the metrics (or the log) without bound
        label, version = metric_labels(self.manager, model, ctx["version"])
        ctx["version"] = version
        if status < 400:
            self.metrics.request_done(label, version, ENDPOINT, latency)
        else:
            self.metrics.request_failed(label, version, ENDPOINT, status, latency)
        if status >= 400 or self.settings.access_log:
            level = logging.ERROR if status >= 500 else logging.INFO
            fields = {**_log_fields(ctx, code.name), "latency_ms": round(latency * 1e3, 3)}
            log.log(level, "gRPC %s %s", INFER_PATH, code.name, extra=fields)
        return latency

    # ---- shared ------------------------------------------------------------------------
    def _authorize(self, context: Any, scope: str) -> Any:
        authorization = api_key = None
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                authorization = value
            elif key == "x-api-key":
                api_key = value
        return self.gate.check(authorization, api_key, scope)

    async def _guarded(self, context: Any, scope: str, answer: Callable[[], T]) -> T:
        """Check the key, then answer; a ScaledlError aborts the call with its gRPC status."""
        try:
            self._authorize(context, scope)
            return answer()
        except ScaledlError as exc:
            await context.abort(status_of(exc), details(exc))
            raise  # unreachable: abort raises


class _Internal(ScaledlError):
    http_status = 500


def _earliest(*timeouts: float | None) -> float | None:
    given = [t for t in timeouts if t is not None]
    return min(given) if given else None


def _specific_versions(config: dict[str, Any]) -> list[Any]:
    return list(config.get("version_policy", {}).get("specific", {}).get("versions", []))


def _log_fields(ctx: dict[str, Any], code: str) -> dict[str, Any]:
    return {
        "request_id": ctx.get("request_id"),
        "method": "gRPC",
        "path": INFER_PATH,
        "status": code,
        "version": ctx.get("version") or None,
        "key_id": ctx.get("key_id"),
    }
