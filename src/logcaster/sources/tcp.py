"""TCP line ingest (SPEC §2): one `LineFramer` per connection, batches into the pipeline.

Each read is framed at once and submitted as one batch; no per-line await and
no per-connection task. A slow or idle client costs only its framer state. When
the queue is full the connection stops reading (`pause_reading`) until the
queue drains, so the kernel's TCP window pushes back on the sender.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import cast

from logcaster.config import Config
from logcaster.log import log_event
from logcaster.pipeline.framing import Framer, LineFramer
from logcaster.pipeline.pipeline import Pipeline
from logcaster.stats import Stats

logger = logging.getLogger("logcaster.sources.tcp")


class StreamConnection(asyncio.Protocol):
    """One ingest connection. `make_framer` decides the framing (lines, syslog, ...)."""

    def __init__(self, server: StreamIngestServer) -> None:
        self._server = server
        self._framer = server.make_framer()
        self._transport: asyncio.Transport | None = None
        self._source = server.name
        self._paused = False
        self._truncated = 0
        self._closed = False
        self.last_data = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        server = self._server
        if len(server.connections) >= server.max_connections:
            log_event(logger, logging.WARNING, "connection_refused", reason="max_connections")
            self._closed = True
            self._transport.abort()
            return
        peer = self._transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self._source = f"{server.name}:{peer[0]}:{peer[1]}"
        server.connections.add(self)
        server.stats.clients += 1

    def data_received(self, data: bytes) -> None:
        self.last_data = time.monotonic()
        texts = self._framer.feed(data)
        if texts:
            self._submit(texts)

    def _submit(self, texts: list[bytes]) -> None:
        framer = self._framer
        if framer.truncated != self._truncated:
            self._server.stats.truncated += framer.truncated - self._truncated
            self._truncated = framer.truncated
        if self._server.pipeline.submit(texts, self._source) and not self._paused:
            transport = self._transport
            if transport is not None and not transport.is_closing():
                self._paused = True
                transport.pause_reading()
                self._server.pipeline.queue.on_space(self._resume)

    def _resume(self) -> None:
        self._paused = False
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.resume_reading()

    def flush_idle(self, now: float, idle: float) -> None:
        """Release an event held for possible continuation lines once the sender is idle."""
        if self._framer.holding and now - self.last_data >= idle:
            texts = self._framer.flush_held()
            if texts:
                self._submit(texts)

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost flushes

    def connection_lost(self, exc: Exception | None) -> None:
        self.finish()

    def finish(self) -> None:
        """End of stream (or shutdown): submit everything the framer still holds."""
        if self._closed:
            return
        self._closed = True
        texts = self._framer.close()
        if texts:
            self._submit(texts)
        server = self._server
        server.connections.discard(self)
        server.stats.clients -= 1
        if self._transport is not None:
            self._transport.close()


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
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.pipeline = pipeline
        self.stats = stats
        self.make_framer = make_framer
        self.max_connections = config.ingest.max_connections
        self._idle = config.multiline.idle_timeout
        self.connections: set[StreamConnection] = set()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: StreamConnection(self), self.host, self.port, reuse_address=True, backlog=1024
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._sweeper = asyncio.create_task(self._sweep(), name=f"{self.name}-idle-flush")

    async def _sweep(self) -> None:
        """Idle flush: a held multi-line event goes out `idle_timeout` after its last byte."""
        idle = self._idle
        while True:
            await asyncio.sleep(idle / 4)
            now = time.monotonic()
            for conn in list(self.connections):
                conn.flush_idle(now, idle)

    async def stop(self) -> None:
        """Stop accepting, then end every connection, flushing what was already read."""
        if self._server is not None:
            self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for conn in list(self.connections):
            conn.finish()
        if self._server is not None:
            await self._server.wait_closed()


def line_ingest(config: Config, pipeline: Pipeline, stats: Stats) -> StreamIngestServer:
    max_line = config.ingest.max_line_bytes
    multiline = config.multiline
    return StreamIngestServer(
        "tcp",
        config.host,
        config.ingest.port,
        config,
        pipeline,
        stats,
        lambda: LineFramer(max_line, multiline),
    )
