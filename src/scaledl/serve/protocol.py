"""uvicorn's httptools protocol with the connection limits it lacks.

uvicorn bounds idle time only *between* requests (`timeout_keep_alive`): a connection that
never sends a byte, or trickles its headers one byte at a time (slowloris), is kept forever,
headers may grow without bound, and `limit_concurrency` answers 503 only after a connection
(and its file descriptor) was taken. This subclass adds, per connection:

- a header timeout: from the moment a connection opens or a new request begins, its request
  line and headers must be complete within `header_timeout_s` (else 408 and close);
- a header size cap: more than `max_header_bytes` before the headers end → 431 and close;
- a connection cap shared by the worker: at the cap, a new connection evicts the connection
  that has been waiting longest without a request in progress (idle keep-alive, or still
  sending headers); when every connection is busy with a request the new one gets 503;
- a drain that drops no request: at shutdown a connection that is receiving a request is
  answered (with `Connection: close`) instead of closed, and an idle one is closed only after
  it stayed idle a moment, so a request already on its way is still taken.

Body read and response write timeouts live in the ASGI app (`scaledl.serve.asgi`), which can
answer 408 with a message.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("scaledl.serve.connections")
DRAIN_QUIET_S = 0.05  # an idle connection is closed at shutdown once idle this long


def _reply(transport: Any, status: bytes, message: str) -> None:
    body = message.encode()
    transport.write(
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\nconnection: close\r\n"
        b"content-length: " + str(len(body) + 12).encode() + b'\r\n\r\n{"error": "' + body + b'"}'
    )
    transport.close()


class ConnectionGuard:
    """The open connections of one worker; the ones without a request in progress in LRU order."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self.waiting: collections.OrderedDict[GuardedProtocol, None] = collections.OrderedDict()
        self.evicted = 0
        self.refused = 0

    def admit(self, conn: GuardedProtocol) -> bool:
        """Count a new connection; make room by evicting the longest-waiting one if needed."""
        if self.open >= self.limit:
            if not self.waiting:
                self.refused += 1
                return False
            victim, _ = self.waiting.popitem(last=False)
            self.evicted += 1
            victim.evict()
        self.open += 1
        self.waiting[conn] = None
        return True

    def busy(self, conn: GuardedProtocol) -> None:
        self.waiting.pop(conn, None)

    def idle(self, conn: GuardedProtocol) -> None:
        self.waiting[conn] = None
        self.waiting.move_to_end(conn)

    def closed(self, conn: GuardedProtocol) -> None:
        self.waiting.pop(conn, None)
        self.open -= 1


class GuardedProtocol(HttpToolsProtocol):
    guard: ConnectionGuard  # set by `protocol_class`
    header_timeout_s: float = 10.0
    max_header_bytes: int = 64 * 1024

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._in_headers = False  # a request has begun and its headers are not complete
        self._counted = False
        self._closing_after_request = False
        self._quiet_checked = False
        if not self.guard.admit(self):
            _reply(transport, b"503 Service Unavailable", "too many open connections; retry")
            return
        self._counted = True
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        if self._counted:
            self._counted = False
            self.guard.closed(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._in_headers and self.parser is not None:
            self._header_bytes += len(data)
            if self._header_bytes > self.max_header_bytes and not self.transport.is_closing():
                _reply(
                    self.transport,
                    b"431 Request Header Fields Too Large",
                    f"request line and headers exceed {self.max_header_bytes} bytes",
                )

    # ---- parser callbacks ------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        self._header_bytes = 0
        self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._cancel_header_timer()
        self.guard.busy(self)
        super().on_headers_complete()
        if self._closing_after_request and self.cycle is not None:
            self.cycle.keep_alive = False

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._counted and not self.transport.is_closing() and not self.pipeline:
            self.guard.idle(self)  # uvicorn's keep-alive timer (--idle-timeout) now runs

    # ---- timers and shutdown ---------------------------------------------------------
    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self._in_headers:
            _reply(
                self.transport,
                b"408 Request Timeout",
                f"request headers did not arrive within {self.header_timeout_s:g} s",
            )
        elif self.cycle is None or self.cycle.response_complete:
            self.transport.close()  # opened (or kept alive) without sending a request

    def evict(self) -> None:
        """Closed to make room for a new connection (no request of its own is in progress)."""
        self._counted = False
        self.guard.open -= 1
        self._cancel_header_timer()
        if not self.transport.is_closing():
            self.transport.close()

    def shutdown(self) -> None:
        if self._in_headers or (self.cycle is not None and not self.cycle.response_complete):
            self._closing_after_request = True  # answer it, then close
            if self.cycle is not None:
                self.cycle.keep_alive = False
            return
        self._close_when_quiet()

    def _close_when_quiet(self) -> None:
        """Close an idle connection, unless a request starts on it within `DRAIN_QUIET_S`."""
        if self.transport.is_closing():
            return
        if self._in_headers or (self.cycle is not None and not self.cycle.response_complete):
            self._closing_after_request = True
            if self.cycle is not None:
                self.cycle.keep_alive = False
            return
        if self._quiet_checked:
            self.transport.close()
            return
        self._quiet_checked = True
        self.loop.call_later(DRAIN_QUIET_S, self._close_when_quiet)


def protocol_class(
    limit: int, header_timeout_s: float, max_header_bytes: int
) -> type[GuardedProtocol]:
    """A protocol class for one uvicorn server, sharing one `ConnectionGuard`."""
    guard = ConnectionGuard(limit)
    attrs = {
        "guard": guard,
        "header_timeout_s": header_timeout_s,
        "max_header_bytes": max_header_bytes,
    }
    return type("ScaledlHttpProtocol", (GuardedProtocol,), attrs)
