"""Small ASGI helpers: header lookup, bounded body reading, one-shot responses."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from scaledl.errors import PayloadTooLargeError, ScaledlError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


_ID_PREFIX = secrets.token_hex(8)
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """A unique id in uuid hex form: a random per-process prefix and a counter (no syscall)."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


class ClientDisconnected(ScaledlError):
    http_status = 499


def header_map(scope: Scope) -> dict[bytes, bytes]:
    """Request headers (names are lower-case in ASGI); the last one wins for repeats."""
    return dict(scope["headers"])


def text(headers: dict[bytes, bytes], name: bytes) -> str | None:
    value = headers.get(name)
    return value.decode("latin-1") if value is not None else None


async def read_body(receive: Receive, headers: dict[bytes, bytes], limit: int) -> bytes:
    """The whole request body, refusing (413) anything over `limit` bytes."""
    declared = headers.get(b"content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            size = -1
        if size > limit:
            raise PayloadTooLargeError(
                f"request body of {size} bytes exceeds the {limit}-byte limit (--max-body-mb)"
            )
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected("the client went away")
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise PayloadTooLargeError(
                f"request body exceeds the {limit}-byte limit (--max-body-mb)"
            )
        if chunk:
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    if len(chunks) == 1:
        return chunks[0]
    return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that yields an already-read body once, then defers to the real one."""
    sent = False

    async def _receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return _receive


async def respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def error_headers(exc: ScaledlError) -> list[tuple[bytes, bytes]]:
    """Content type plus what the status calls for (Retry-After, WWW-Authenticate, close)."""
    headers = [(b"content-type", b"application/json")]
    if exc.http_status == 429:
        headers.append((b"retry-after", b"1"))
    elif exc.http_status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="scaledl"'))
    elif exc.http_status == 413:
        headers.append((b"connection", b"close"))
    return headers
