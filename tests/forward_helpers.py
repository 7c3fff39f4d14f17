"""What the forward tests share: an HTTP receiver, group configs and paced senders.

`HttpReceiver` is an aiohttp NDJSON receiver in its own thread whose answers a
test changes (delay, status, refused bodies); the `receiver` fixture
(conftest.py) starts one for a test. `group` and `write_config` write a
server's forward config, `paced_send` spreads lines over time and connections,
`stored_lines` reads what a downstream server stored, and `settled` says when
an upstream has nothing left to forward.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import uvloop
import yaml
from aiohttp import web


class HttpReceiver:
    """An NDJSON receiver in its own thread; the test changes how it answers."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.posts = 0
        self.delay = 0.0  # seconds before each answer
        self.reject_marker: bytes | None = None  # 400 for bodies holding this
        self.status = 200  # answer to everything else
        # uvloop, as the servers run: on the plain selector loop, a connection
        # whose peer is already gone when asyncio makes its transport (a forwarder
        # reconnecting as the receiver stops) leaves the accepted socket unclosed
        # (`_accept_connection2` drops it when the transport's constructor raises),
        # and it warned at some later test's garbage collection.
        self._loop = uvloop.new_event_loop()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.posts += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.reject_marker is not None and self.reject_marker in body:
            return web.Response(status=400, text="bad event: marker found")
        if self.status >= 300:
            return web.Response(status=self.status, text="unavailable")
        self.events.extend(orjson.loads(line) for line in body.splitlines() if line)
        return web.Response(status=200)

    async def _start(self, port: int) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/ingest", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start(self) -> None:
        """Listen (again, on the same port after the first start)."""
        asyncio.run_coroutine_threadsafe(self._start(self.port), self._loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ingest"

    def texts(self) -> list[str]:
        return [e["body"] for e in self.events]

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


def write_config(tmp_path: Path, **config: Any) -> str:
    path = tmp_path / "upstream.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return str(path)


def group(name: str, primaries: list[str], backups: list[str] = (), **extra: Any) -> Any:  # type: ignore[assignment]
    return {
        "name": name,
        "primaries": [{"url": u, "write_timeout": 2.0} for u in primaries],
        "backups": [{"url": u, "write_timeout": 2.0} for u in backups],
        "open_s": 0.2,
        "max_open_s": 1.0,
        **extra,
    }


def stored_lines(data_dir: Path) -> list[bytes]:
    """Every event text a stopped server stored, in id order (`logcaster data cat`)."""
    if not data_dir.exists():
        return []
    out = subprocess.run(
        [sys.executable, "-m", "logcaster", "data", "cat", str(data_dir)],
        capture_output=True,
        check=True,
    )
    return out.stdout.splitlines()


def paced_send(port: int, lines: list[bytes], seconds: float, connections: int = 1) -> None:
    """Send `lines` spread over `seconds`; connection c sends lines[c::connections], in order."""
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(connections)]
    streams = [lines[c::connections] for c in range(connections)]
    steps = 200
    start = time.monotonic()
    for k in range(steps):
        for sock, stream in zip(socks, streams, strict=True):
            part = stream[len(stream) * k // steps : len(stream) * (k + 1) // steps]
            sock.sendall(b"".join(part))
        time.sleep(max(0.0, start + seconds * (k + 1) / steps - time.monotonic()))
    for sock in socks:
        sock.close()


def settled(stats: dict[str, float], total: int) -> bool:
    return (
        stats["Total"] >= total
        and stats["QueueEvents"] == 0
        and stats["ForwardBuffered"] == 0
        and stats["Spooled"] == 0
    )
