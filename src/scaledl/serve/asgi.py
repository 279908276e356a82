"""Small ASGI helpers: header lookup, bounded and timed body reading, one-shot responses."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import urllib.parse
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


class RequestTimeoutError(ScaledlError):
    http_status = 408


def id_header(request_id: str) -> bytes:
    """The X-Request-ID header value: the id itself when it is printable ASCII, else its
    UTF-8 percent-encoded (RFC 3986) form, so no id can break or mangle the header."""
    if request_id.isascii() and request_id.isprintable():
        return request_id.encode("ascii")
    return urllib.parse.quote(request_id, safe="").encode("ascii")


def header_map(scope: Scope) -> dict[bytes, bytes]:
    """Request headers (names are lower-case in ASGI); the last one wins for repeats."""
    return dict(scope["headers"])


def text(headers: dict[bytes, bytes], name: bytes) -> str | None:
    value = headers.get(name)
    return value.decode("latin-1") if value is not None else None


async def read_body(
    receive: Receive,
    headers: dict[bytes, bytes],
    limit: int,
    timeout_s: float | None = None,
    flag: str = "--max-body-mb",
) -> bytes:
    """The whole request body, refusing (413) anything over `limit` bytes and (408) a body
    that has not fully arrived `timeout_s` seconds after its headers."""
    declared = headers.get(b"content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            size = -1
        if size > limit:
            raise PayloadTooLargeError(
                f"request body of {size} bytes exceeds the {limit}-byte limit ({flag})"
            )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s if timeout_s else None
    try:
        async with asyncio.timeout_at(deadline):
            return await _read_chunks(receive, limit, flag)
    except TimeoutError:
        raise RequestTimeoutError(
            f"the request body did not arrive within {timeout_s:g} s (--body-timeout)"
        ) from None


async def _read_chunks(receive: Receive, limit: int, flag: str) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected("the client went away")
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise PayloadTooLargeError(f"request body exceeds the {limit}-byte limit ({flag})")
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
    elif exc.http_status in (408, 413):
        headers.append((b"connection", b"close"))
    return headers


def timed_send(send: Send, timeout_s: float) -> Send:
    """`send` that gives up (raising, so the server closes the connection) when a client has
    not taken the response within `timeout_s`: a reader that never reads cannot pin a task."""

    async def _send(message: Message) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                await send(message)
        except TimeoutError:
            raise ClientDisconnected(
                f"the client did not read the response within {timeout_s:g} s"
            ) from None

    return _send
