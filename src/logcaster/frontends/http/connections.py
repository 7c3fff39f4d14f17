"""The HTTP listener's per-connection protocols, around aiohttp's: a refusal past
a connection cap, and the header deadline that cuts slow clients (slowloris)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from logcaster.frontends.http.server import HttpServer

REFUSED_LINGER_S = 1.0  # a refused connection is read and dropped at most this long
_TIMED_OUT_BODY = b'{"error": "request headers not received within http.header_timeout"}'
REQUEST_TIMEOUT_ANSWER = (
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
    % (len(_TIMED_OUT_BODY), _TIMED_OUT_BODY)
)


class Refused(asyncio.Protocol):
    """A connection over `http.max_connections`: one 503, then closed.

    The answer is followed by a half-close, and what the client sends is read
    and dropped until it closes (at most REFUSED_LINGER_S): closing with its
    request unread would make the kernel reset the connection, and the client
    would see the reset instead of the 503.
    """

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._timer = _answer_503(self._transport)

    def data_received(self, data: bytes) -> None:
        pass  # the request nobody will answer: dropped

    def eof_received(self) -> bool:
        return False  # the client is done: close

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()


def _answer_503(transport: asyncio.Transport) -> asyncio.TimerHandle:
    """Write `503 too many connections`, half-close, abort after REFUSED_LINGER_S."""
    body = b'{"error": "too many connections"}'
    transport.write(
        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    if transport.can_write_eof():
        transport.write_eof()
    return asyncio.get_running_loop().call_later(REFUSED_LINGER_S, transport.abort)


class HeaderDeadline(asyncio.Protocol):
    """aiohttp's protocol for one connection, wrapped to bound how long a request's
    line and headers take (`http.header_timeout`).

    aiohttp itself waits for headers until `http.keepalive_timeout`, however
    slowly they come, so a client sending a byte every few seconds holds a
    connection for minutes (slowloris). Here the deadline runs from the
    connection's start, and on a kept-alive connection from the first byte of
    the next request (the idle time before it is keepalive_timeout's); the
    middleware stops it when the request reaches a handler (`started`) and
    re-opens the wait when the handler is done (`finished`). Past the deadline
    the connection gets a 408 (if nothing was answered on it yet, so the 408
    cannot interleave with a response) and is closed.
    """

    __slots__ = (
        "_in_handler",
        "_inner",
        "_ip",
        "_server",
        "_timer",
        "_transport",
        "_waiting",
        "answered",
    )

    def __init__(self, inner: asyncio.Protocol, server: HttpServer) -> None:
        self._inner = inner
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._waiting = True  # for a request's headers (the deadline runs)
        self._in_handler = False  # a request of it is in a handler (else: idle or waiting)
        self.answered = False  # a request of this connection reached a handler
        self._ip: str | None = None  # admitted under http.max_connections_per_ip

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        ip = str(peer[0]) if isinstance(peer, tuple) else ""
        if not self._server.admit(ip):
            # Past the per-address cap: answered like one past the total cap; aiohttp
            # never sees the connection.
            self._waiting = False
            self._timer = _answer_503(self._transport)
            return
        self._ip = ip
        self._server.guards[self._inner] = self
        self._inner.connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._ip is None:
            return  # refused: dropped
        if not self._waiting and not self._in_handler:
            self._waiting = True  # idle, then the next request's first byte
            self._arm()
        self._inner.data_received(data)

    def started(self) -> None:
        self._in_handler = True
        self._waiting = False
        self.answered = True
        self._cancel()

    def finished(self) -> None:
        self._in_handler = False

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._ip is not None else False

    def pause_writing(self) -> None:
        if self._ip is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._ip is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        if self._ip is None:
            return
        self._server.release(self._ip)
        self._server.guards.pop(self._inner, None)
        self._inner.connection_lost(exc)

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._server.config.header_timeout, self._expired)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        transport = self._transport
        if not self._waiting or transport is None or transport.is_closing():
            return
        self._server.slow_closed += 1
        if not self.answered:
            transport.write(REQUEST_TIMEOUT_ANSWER)
        transport.close()
