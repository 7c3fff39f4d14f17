"""The component protocol: a part added to app.py's table with one line is started,
reported, counted, stopped and closed like every other (a real server, real sockets)."""

from __future__ import annotations

import asyncio
import errno
import socket

import pytest

from logcaster.app import Server
from logcaster.component import Endpoint, listening, server_endpoint
from logcaster.config import load_config
from logcaster.exceptions import StartupError
from logcaster.metrics.registry import Metric, Readings

ANSWERS = Metric("probe_answers", "counter", "Answers a probe gave", stats="ProbeAnswers")


class Probe:
    """A front end that answers every connection with one line, and records its calls."""

    def __init__(self, calls: list[str], port: int = 0, fail: OSError | None = None) -> None:
        self.option = "probe.port"
        self.calls = calls
        self.port = port
        self.fail = fail
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self.calls.append("start")
        if self.fail is not None:
            raise self.fail
        with listening(self.option, "127.0.0.1", self.port):
            self._server = await asyncio.start_server(self._answer, "127.0.0.1", self.port)

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"probe\n")
        await writer.drain()
        writer.close()

    @property
    def endpoint(self) -> Endpoint | None:
        return server_endpoint(self._server) if self._server is not None else None

    def readings(self, out: Readings) -> None:
        out.add(ANSWERS, 2)

    async def stop(self, deadline: float | None = None) -> None:
        self.calls.append("stop" if deadline is not None else "stop without deadline")
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def close(self) -> None:
        self.calls.append("close")


def _server() -> Server:
    overrides = {"ingest.port": 0, "query.port": 0, "http.port": 0}
    config = load_config(None, environ={}, overrides=overrides)
    return Server(config)


def _ask(port: int, line: bytes = b"") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        if line:
            sock.sendall(line)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_a_component_added_in_one_line_is_driven_like_every_other() -> None:
    async def run() -> None:
        calls: list[str] = []
        server = _server()
        server.components.frontends["probe"] = Probe(calls)
        server.components.frontends["probe2"] = Probe(calls)
        await server.start()
        try:
            ports = server.ports
            assert set(ports) == {"ingest", "query", "http", "probe", "probe2"}
            assert ports["probe"] > 0
            assert await asyncio.to_thread(_ask, ports["probe"]) == b"probe\n"
            # Its counters are in STATS, summed with the same name from the other probe.
            assert server.stats_snapshot()["ProbeAnswers"] == 4
            stats = await asyncio.to_thread(_ask, ports["query"], b"STATS\n")
            assert b"ProbeAnswers=4" in stats
        finally:
            await server.stop()
        assert calls == ["start", "start", "stop", "stop", "close", "close"]

    asyncio.run(run())


def test_a_component_that_cannot_start_names_its_option() -> None:
    async def run() -> None:
        server = _server()
        busy = OSError(errno.EADDRINUSE, "in use")
        server.components.frontends["probe"] = Probe([], fail=busy)
        with pytest.raises(StartupError) as failed:
            await server.start()
        await server.stop()  # what started before it closes again
        assert str(failed.value) == "probe.port: Address already in use"

    asyncio.run(run())


def test_a_listener_that_cannot_bind_names_its_address() -> None:
    async def run() -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            server = _server()
            server.components.frontends["probe"] = Probe([], port=port)
            with pytest.raises(StartupError) as failed:
                await server.start()
            await server.stop()
        assert str(failed.value) == (
            f"probe.port: cannot listen on 127.0.0.1:{port}: Address already in use"
        )

    asyncio.run(run())
