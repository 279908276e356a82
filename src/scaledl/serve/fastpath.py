"""The HTTP front door: `/infer` and `/predict` as plain ASGI, everything else through FastAPI.

Inference is the only hot path, so it skips the framework (routing tables, dependency
injection, request/response objects): one regex match, one bounded body read, the codec, the
batcher, two `send` calls. Every other route (health, metadata, repository, admin, metrics,
extension routes) goes to the FastAPI app, after the same body cap and with the same
`X-Request-ID` response header.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.routing import Match

from scaledl.errors import PayloadTooLargeError, ScaledlError
from scaledl.serve import codec, encoding, predict
from scaledl.serve.asgi import (
    ClientDisconnected,
    Message,
    Receive,
    Scope,
    Send,
    error_headers,
    header_map,
    id_header,
    new_request_id,
    read_body,
    replay,
    respond,
    text,
    timed_send,
)
from scaledl.serve.context import KeyGate, Lifecycle, ServedModels, metric_labels
from scaledl.serve.metrics import ServerMetrics
from scaledl.serve.model import ModelVersion
from scaledl.serve.offload import INLINE_BYTES, Offloader
from scaledl.serve.service import InferenceService
from scaledl.serve.settings import ServeSettings

log = logging.getLogger("scaledl.serve.access")
ROUTE = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?/(infer|predict)$")
JSON = b"application/json"
OCTETS = b"application/octet-stream"
BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")
CLOSE = (b"connection", b"close")
LARGE_OUTPUT_BYTES = 1 << 20  # responses above this are encoded on the CPU pool


class FrontDoor:
    """Routes inference itself; hands every other request to `app` (the FastAPI app)."""

    def __init__(
        self,
        app: FastAPI,
        *,
        settings: ServeSettings,
        gate: KeyGate,
        lifecycle: Lifecycle,
        models: ServedModels,
        service: InferenceService,
        metrics: ServerMetrics,
        offload: Offloader,
    ) -> None:
        self.app = app
        self.settings = settings
        self.gate = gate
        self.lifecycle = lifecycle
        self.models = models
        self.service = service
        self.metrics = metrics
        self.offload = offload
        self.limit = settings.max_body_bytes
        self.json_limit = min(self.limit, settings.max_json_bytes)
        self.body_timeout = settings.body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = ROUTE.match(scope["path"]) if scope["method"] == "POST" else None
        if match is None:
            await self._delegate(scope, receive, send)
            return
        model, version, kind = match.groups()
        await self._inference(scope, receive, send, model, version, kind)

    # ---- inference -------------------------------------------------------------------
    async def _inference(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        model: str,
        version: str | None,
        kind: str,
    ) -> None:
        started = time.perf_counter()
        received_at = time.time()
        ctx: dict[str, Any] = {"request_id": None, "version": version or "", "key_id": None}
        metrics = self.metrics
        metrics.inflight.inc()
        try:
            status, payload, extra, record = await self._answer(
                scope, receive, model, version, kind, ctx, received_at
            )
            request_id = ctx["request_id"] = ctx["request_id"] or new_request_id()
            extra.append((b"x-request-id", id_header(request_id)))
            extra.append((b"content-length", str(len(payload)).encode()))
            if self.lifecycle.draining and CLOSE not in extra:
                extra.append(CLOSE)  # draining: the client opens its next request elsewhere
            if status != 499:
                try:
                    await respond(timed_send(send, self.body_timeout), status, payload, extra)
                except ClientDisconnected:
                    status = 499
        finally:
            metrics.inflight.dec()
        latency = time.perf_counter() - started
        self._account(scope, model, kind, status, ctx, latency)
        if record is not None:
            self.service.record(record[0], request_id, received_at, latency, record[1])

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        model: str,
        version: str | None,
        kind: str,
        ctx: dict[str, Any],
        received_at: float,
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]], Any]:
        """(status, body, headers, record) for one /infer or /predict request."""
        headers = header_map(scope)
        body_read = False
        try:
            entry = self.gate.check(
                text(headers, b"authorization"), text(headers, b"x-api-key"), "infer"
            )
            ctx["key_id"] = entry.id if entry else None
            body = await read_body(receive, headers, self.limit, self.body_timeout)
            body_read = True
            if kind == "infer":
                return await self._infer(model, version, headers, body, ctx, received_at)
            return await self._predict(model, version, scope, headers, body, ctx, received_at)
        except ScaledlError as exc:
            extra = error_headers(exc)
            if not body_read and has_body(headers) and CLOSE not in extra:
                extra.append(CLOSE)  # the unread body is not worth receiving
            return exc.http_status, encoding.error_body(exc.message), extra, None
        except Exception:
            log.exception(
                "unexpected error in %s", scope["path"], extra=_log_fields(ctx, scope, 500)
            )
            return (
                500,
                encoding.error_body("internal server error"),
                [(b"content-type", JSON)],
                None,
            )

    def _account(
        self, scope: Scope, model: str, kind: str, status: int, ctx: dict[str, Any], latency: float
    ) -> None:
        """Metrics for every request; a log line for errors (and all with --access-log)."""
        metrics = self.metrics
        model_label, version_label = metric_labels(self.models, model, ctx["version"])
        if status < 400:
            metrics.request_done(model_label, version_label, kind, latency)
        else:
            metrics.request_failed(model_label, version_label, kind, status, latency)
        if status >= 400 or self.settings.access_log:
            level = logging.ERROR if status >= 500 else logging.INFO
            fields = {**_log_fields(ctx, scope, status), "latency_ms": round(latency * 1e3, 3)}
            log.log(level, "%s %s %d", scope["method"], scope["path"], status, extra=fields)

    async def _decode(self, headers: dict[bytes, bytes], body: bytes) -> codec.InferRequest:
        """Body → V2 request (decompression, JSON and binary tensors; no model needed yet).

        Small bodies decode on the loop; decompression and big binary bodies on the CPU pool;
        big JSON in a parser process (its parsing would hold the GIL too long).
        """
        codec.check_content_type(text(headers, b"content-type"))
        encoding_ = text(headers, b"content-encoding")
        offload = self.offload
        if encoding_:
            body = await offload.run(codec.decode_body, body, encoding_, self.limit)
        header_length = text(headers, codec.HEADER_LENGTH.encode())
        json_size = len(body) if header_length is None else codec.header_size(header_length)
        if json_size > self.json_limit:
            raise PayloadTooLargeError(
                f"the JSON part of the request is {json_size} bytes, more than the "
                f"{self.json_limit}-byte limit (--max-json-mb); send large tensors as binary "
                "data (Inference-Header-Content-Length)"
            )
        if json_size > INLINE_BYTES:
            return await offload.run_process(codec.decode_request, body, header_length)
        if len(body) > INLINE_BYTES:
            return await offload.run(codec.decode_request, body, header_length)
        return codec.decode_request(body, header_length)

    async def _infer(
        self,
        model: str,
        version: str | None,
        headers: dict[bytes, bytes],
        body: bytes,
        ctx: dict[str, Any],
        received_at: float,
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]], Any]:
        request = await self._decode(headers, body)
        ctx["request_id"] = request_id = request.request_id or new_request_id()
        answer = await self.service.infer(
            model, version, lambda mv: request.inputs, request.timeout_s, request_id, received_at
        )
        mv = answer.version
        ctx["version"] = mv.version
        names = mv.signature.output_names
        wanted = request.outputs if request.outputs is not None else names
        unknown = [n for n in wanted if n not in names]
        if unknown:
            raise codec.BadRequest(
                f"unknown output {unknown[0]!r}; the model's outputs are {names}"
            )
        arrays = dict(zip(names, answer.result.outputs))
        flags = [request.binary_outputs.get(n, request.binary_default) for n in wanted]
        outputs = [(n, arrays[n]) for n in wanted]
        encode = encoding.encode_response
        if sum(a.nbytes for _, a in outputs) > LARGE_OUTPUT_BYTES:
            payload, header_len = await self.offload.run(
                encode, model, mv.version, request_id, outputs, flags
            )
        else:
            payload, header_len = encode(model, mv.version, request_id, outputs, flags)
        extra = [(b"content-type", JSON if header_len is None else OCTETS)]
        if header_len is not None:
            extra.append((b"inference-header-content-length", str(header_len).encode()))
        return 200, payload, extra, (answer, None)

    async def _predict(
        self,
        model: str,
        version: str | None,
        scope: Scope,
        headers: dict[bytes, bytes],
        body: bytes,
        ctx: dict[str, Any],
        received_at: float,
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]], Any]:
        content_type = text(headers, b"content-type")
        ctx["request_id"] = request_id = new_request_id()
        raws: dict[str, Any] = {}

        limits = predict.Limits(self.json_limit, self.settings.max_image_pixels)
        decoded = predict.is_body(content_type)
        rows = None
        if not decoded and len(body) > INLINE_BYTES and predict.is_json(content_type):
            rows = await self.offload.run_process(predict.parse_rows, body, limits)

        def prepare(mv: ModelVersion) -> dict[str, Any]:
            spec = predict.preprocessing_of(mv)
            raws[mv.version] = raw = predict.raw_rows(body, content_type, spec, limits, rows)
            return predict.graph_inputs(mv, raw)

        offload = decoded or rows is not None
        answer = await self.service.infer(
            model, version, prepare, None, request_id, received_at, raws, offload
        )
        mv = answer.version
        ctx["version"] = mv.version
        top = _query_int(scope, "top", 3)
        doc = {
            "model_name": model,
            "model_version": mv.version,
            "id": request_id,
            "predictions": predict.predictions(mv, answer.result.outputs[0], top),
        }
        return 200, orjson.dumps(doc), [(b"content-type", JSON)], (answer, raws.get(mv.version))

    # ---- everything else -------------------------------------------------------------
    async def _delegate(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Every other route: the API key is checked from the headers *before* any body is
        read, bodies are capped at the JSON limit and must arrive within the body timeout."""
        request_id = new_request_id().encode()
        headers = header_map(scope)
        close = False
        send = timed_send(send, self.body_timeout)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                closing = close or self.lifecycle.draining  # draining: no keep-alive reuse
                extra = [(b"x-request-id", request_id), *([CLOSE] if closing else [])]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        try:
            if has_body(headers):
                route_scope = self._route_scope(scope) if scope["method"] in BODY_METHODS else None
                close = route_scope is None  # 404/405/GET: FastAPI answers without the body
                if route_scope is not None:
                    self._check_key(headers, route_scope)
                    body = await read_body(
                        receive, headers, self.json_limit, self.body_timeout, "--max-json-mb"
                    )
                    receive = replay(body, receive)
            await self.app(scope, receive, send_with_id)
        except ClientDisconnected:
            return
        except ScaledlError as exc:
            payload = encoding.error_body(exc.message)
            length = (b"content-length", str(len(payload)).encode())
            close = True  # the body was not (fully) read
            await respond(send_with_id, exc.http_status, payload, [*error_headers(exc), length])

    def _route_scope(self, scope: Scope) -> str | None:
        """The key scope the matching route needs ("" for an open route); None: no route."""
        for route in _flat(self.app.router.routes):
            match, _ = route.matches(scope)
            if match == Match.FULL:
                for dependency in getattr(route, "dependencies", []):
                    needed = getattr(dependency.dependency, "scaledl_scope", None)
                    if needed:
                        return str(needed)
                return ""
        return None

    def _check_key(self, headers: dict[bytes, bytes], needed: str) -> None:
        if needed:
            self.gate.check(text(headers, b"authorization"), text(headers, b"x-api-key"), needed)


def _flat(routes: list[Any]) -> Iterator[Any]:
    """Every route, routers included without a prefix (as `build_router`'s is) unfolded."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _flat(inner.routes)
        else:
            yield route


def has_body(headers: dict[bytes, bytes]) -> bool:
    length = headers.get(b"content-length")
    return b"transfer-encoding" in headers or (length is not None and length.strip() != b"0")


def _log_fields(ctx: dict[str, Any], scope: Scope, status: int) -> dict[str, Any]:
    return {
        "request_id": ctx.get("request_id"),
        "method": scope["method"],
        "path": scope["path"],
        "status": status,
        "version": ctx.get("version") or None,
        "key_id": ctx.get("key_id"),
    }


def _query_int(scope: Scope, name: str, default: int) -> int:
    query = scope.get("query_string", b"").decode("latin-1")
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if key == name and value.isascii() and value.isdigit() and len(value) <= 6:
            return int(value)
    return default
