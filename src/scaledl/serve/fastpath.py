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
from typing import TYPE_CHECKING, Any

import orjson

from scaledl.errors import ScaledlError
from scaledl.serve import codec, encoding, predict
from scaledl.serve.asgi import (
    ClientDisconnected,
    Message,
    Receive,
    Scope,
    Send,
    error_headers,
    header_map,
    new_request_id,
    read_body,
    replay,
    respond,
    text,
)
from scaledl.serve.model import ModelVersion

if TYPE_CHECKING:
    from scaledl.serve.app import ModelServer

log = logging.getLogger("scaledl.serve.access")
ROUTE = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?/(infer|predict)$")
JSON = b"application/json"
OCTETS = b"application/octet-stream"
BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")


class FrontDoor:
    def __init__(self, server: ModelServer) -> None:
        self.server = server
        self.settings = server.settings
        self.limit = server.settings.max_body_bytes

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
        metrics = self.server.metrics
        metrics.inflight.inc()
        try:
            status, payload, extra, record = await self._answer(
                scope, receive, model, version, kind, ctx, received_at
            )
            request_id = ctx["request_id"] = ctx["request_id"] or new_request_id()
            extra.append((b"x-request-id", request_id.encode("latin-1", "replace")))
            extra.append((b"content-length", str(len(payload)).encode()))
            if status != 499:
                await respond(send, status, payload, extra)
        finally:
            metrics.inflight.dec()
        latency = time.perf_counter() - started
        self._account(scope, model, kind, status, ctx, latency)
        if record is not None:
            self.server.service.record(record[0], request_id, received_at, latency, record[1])

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
        try:
            entry = self.server.auth.check(
                text(headers, b"authorization"), text(headers, b"x-api-key"), "infer"
            )
            ctx["key_id"] = entry.id if entry else None
            body = await read_body(receive, headers, self.limit)
            if kind == "infer":
                return await self._infer(model, version, headers, body, ctx, received_at)
            return await self._predict(model, version, scope, headers, body, ctx, received_at)
        except ScaledlError as exc:
            if exc.http_status in (401, 403):
                self.server.metrics.auth_failures.labels(str(exc.http_status)).inc()
            return exc.http_status, encoding.error_body(exc.message), error_headers(exc), None
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
        metrics = self.server.metrics
        label = model if model in self.server.manager.routes else "_unknown"
        if status < 400:
            metrics.request_done(label, ctx["version"], kind, latency)
        else:
            metrics.request_failed(label, ctx["version"], kind, status, latency)
        if status >= 400 or self.settings.access_log:
            level = logging.ERROR if status >= 500 else logging.INFO
            fields = {**_log_fields(ctx, scope, status), "latency_ms": round(latency * 1e3, 3)}
            log.log(level, "%s %s %d", scope["method"], scope["path"], status, extra=fields)

    async def _infer(
        self,
        model: str,
        version: str | None,
        headers: dict[bytes, bytes],
        body: bytes,
        ctx: dict[str, Any],
        received_at: float,
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]], Any]:
        codec.check_content_type(text(headers, b"content-type"))
        body = codec.decode_body(body, text(headers, b"content-encoding"), self.limit)
        request = codec.decode_request(body, text(headers, codec.HEADER_LENGTH.encode()))
        ctx["request_id"] = request_id = request.request_id or new_request_id()
        answer = await self.server.service.infer(
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
        payload, header_len = encoding.encode_response(
            model, mv.version, request_id, [(n, arrays[n]) for n in wanted], flags
        )
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

        def prepare(mv: ModelVersion) -> dict[str, Any]:
            spec = predict.preprocessing_of(mv)
            raws[mv.version] = raw = predict.raw_rows(body, content_type, spec)
            return predict.graph_inputs(mv, raw)

        answer = await self.server.service.infer(
            model, version, prepare, None, request_id, received_at, raws, offload=True
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
        request_id = new_request_id().encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id)]
            await send(message)

        if scope["method"] in BODY_METHODS:
            try:
                body = await read_body(receive, header_map(scope), self.limit)
            except ClientDisconnected:
                return
            except ScaledlError as exc:
                payload = encoding.error_body(exc.message)
                length = (b"content-length", str(len(payload)).encode())
                await respond(send_with_id, exc.http_status, payload, [*error_headers(exc), length])
                return
            receive = replay(body, receive)
        await self.server.app(scope, receive, send_with_id)


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
        if key == name and value.isdigit():
            return int(value)
    return default
