"""A TCP listener whose connections frame a byte stream into event texts.

The listener (bind, caps, the idle sweep, stop and close) for TCP line ingest
and syslog over TCP; each connection is a `StreamConnection` (tcp.py).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable

from logcaster.component import Endpoint, listening, server_endpoint
from logcaster.config import Config
from logcaster.metrics.registry import Readings
from logcaster.parsing.multiline import Grouper
from logcaster.pipeline.framing import Framer, LineFramer
from logcaster.pipeline.pipeline import Pipeline
from logcaster.security.guard import Guard, open_guard
from logcaster.security.tls import peer_subject, serve
from logcaster.sources.connections import CONNECTIONS, ConnectionLimits
from logcaster.sources.tcp import StreamConnection
from logcaster.stats import Stats


class StreamIngestServer:
    """A TCP listener whose connections frame a byte stream into event texts."""

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        config: Config,
        pipeline: Pipeline,
        stats: Stats,
        make_framer: Callable[[], Framer],
        *,
        option: str,
        guard: Guard,
        acks: bool = False,
        tokens: bool = False,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """`acks`: connections may ask for acknowledged delivery (line framing only);
        `tokens`: with auth on, a connection may authenticate with an AUTH line
        (else only with a client certificate); `option`: the config key of the
        port (named when it cannot be bound); `tls`: serve TLS with this context
        (security/tls.py)."""
        self.name = name
        self.option = option
        self.host = host
        self.port = port
        self.hosts: list[str] = []  # the addresses bound, after start
        self.pipeline = pipeline
        self.stats = stats
        self.make_framer = make_framer
        self.acks = acks
        self.ssl = tls
        self.guard = guard
        self.tokens = tokens
        self.checks: set[asyncio.Task[None]] = set()  # AUTH lines being checked
        self.limits = ConnectionLimits.of(name, config.ingest)
        self._idle = config.multiline.idle_timeout
        self.connections: set[StreamConnection] = set()
        # Ack connections kept open after `stop` until `close`, for their last acks.
        self.lingering: set[StreamConnection] = set()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        with listening(self.option, self.host, self.port):
            self._server = await serve(
                lambda: StreamConnection(self), self.host, self.port, self.ssl
            )
        bound = server_endpoint(self._server)
        self.port, self.hosts = bound.port, bound.hosts
        self.limits.check_fd_limit()
        self._sweeper = asyncio.create_task(self._sweep(), name=f"{self.name}-idle-flush")

    async def _sweep(self) -> None:
        """Idle flush: a held multi-line event goes out `multiline.idle_timeout` after
        its last byte; a connection idle for `ingest.idle_timeout`, or inside one
        line for `ingest.line_timeout`, is closed."""
        idle = self._idle
        close_after = self.limits.idle_timeout
        line_timeout = self.limits.line_timeout
        every = min(t for t in (idle, close_after, line_timeout) if t) / 4
        while True:
            await asyncio.sleep(every)
            now = time.monotonic()
            gated = self.guard.required
            for conn in list(self.connections):
                if gated:
                    conn.check_auth(now)
                conn.flush_idle(now, idle)
                if close_after:
                    conn.close_if_idle(now, close_after)
                if line_timeout:
                    conn.close_if_slow(now, line_timeout)

    def peer_subject(self, transport: asyncio.BaseTransport) -> str | None:
        """The verified client certificate's subject, if any (TLS with client_auth)."""
        return peer_subject(transport) if self.ssl is not None else None

    @property
    def endpoint(self) -> Endpoint | None:
        return Endpoint(self.port, self.hosts) if self._server is not None else None

    def readings(self, out: Readings) -> None:
        out.add(CONNECTIONS, len(self.connections), self.name)
        self.limits.readings(out)

    async def stop(self, deadline: float | None = None) -> None:
        """Stop accepting, then end every connection, flushing what was already read."""
        if self._server is not None:
            self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for conn in list(self.connections):
            conn.finish(linger=True)

    async def close(self) -> None:
        """After the drain: close the connections `stop` left open for their acks."""
        for conn in list(self.lingering):
            conn._release()
        if self._server is not None:
            await self._server.wait_closed()


def line_ingest(
    config: Config,
    pipeline: Pipeline,
    stats: Stats,
    guard: Guard | None = None,
    tls: ssl.SSLContext | None = None,
) -> StreamIngestServer:
    max_line = config.ingest.max_line_bytes
    multiline = config.multiline
    # The listener's grouping rules, compiled once: its connections share them.
    grouper = Grouper.for_listener(multiline, "ingest")
    return StreamIngestServer(
        "tcp",
        config.ingest.host,
        config.ingest.port,
        config,
        pipeline,
        stats,
        lambda: LineFramer(max_line, multiline, grouper),
        option="ingest.port",
        guard=guard or open_guard("ingest"),
        acks=True,
        tokens=True,
        tls=tls,
    )
