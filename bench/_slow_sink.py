"""A slow HTTP NDJSON receiver for bench/overload: `python bench/_slow_sink.py --delay-ms 50`.

It listens on 127.0.0.1 (port 0 unless `--port`), prints one JSON line
`{"port": N}` on stdout once it accepts connections, and then answers every
`POST /ingest` with 200 after sleeping `--delay-ms` (one request at a time per
connection; the forward sink sends one at a time). It counts what it received:

- `GET /stats`: posts (and the events in the largest), events (JSON lines),
  distinct ERROR events (`"level": "ERROR"`), distinct event ids and
  duplicates (at-least-once delivery may resend), the time of the first
  POST's arrival and of the last POST's answer.
- `GET /seen`: the bench lines that arrived, as `[[connection, index], ...]`
  (from the `c=C i=I` fields of the bench's lines), to see which part of each
  connection's stream reached the sink.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import socket
import sys
import time

import orjson
from aiohttp import web

_SEQ = re.compile(rb" c=(\d+) i=(\d+)")


class Counts:
    def __init__(self) -> None:
        self.posts = 0
        self.max_post = 0  # events in the largest POST
        self.events = 0
        self.errors = 0
        self.ids: set[int] = set()
        self.duplicates = 0
        self.seen: list[tuple[int, int]] = []
        self.first_at: float | None = None  # time.time() of the first POST's arrival
        self.last_at: float | None = None  # time.time() of the last POST's answer

    def add(self, body: bytes) -> None:
        lines = [line for line in body.split(b"\n") if line.strip()]
        self.posts += 1
        self.max_post = max(self.max_post, len(lines))
        for line in lines:
            doc = orjson.loads(line)
            self.events += 1
            event_id = doc.get("id")
            if isinstance(event_id, int):
                if event_id in self.ids:
                    self.duplicates += 1
                    continue
                self.ids.add(event_id)
            if doc.get("level") == "ERROR":
                self.errors += 1
            text = doc.get("body")
            if isinstance(text, str):
                m = _SEQ.search(text.encode())
                if m is not None:
                    self.seen.append((int(m[1]), int(m[2])))

    def doc(self) -> dict[str, object]:
        return {
            "posts": self.posts,
            "max_post": self.max_post,
            "events": self.events,
            "errors": self.errors,
            "distinct": len(self.ids),
            "duplicates": self.duplicates,
            "first_at": self.first_at,
            "last_at": self.last_at,
        }


def make_app(delay_s: float) -> web.Application:
    counts = Counts()

    async def ingest(request: web.Request) -> web.Response:
        arrived = time.time()
        if counts.first_at is None:
            counts.first_at = arrived
        body = await request.read()
        await asyncio.sleep(delay_s)  # the slow part
        counts.add(body)
        counts.last_at = time.time()
        return web.Response(text="ok")

    async def stats(request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(counts.doc()), content_type="application/json")

    async def seen(request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(counts.seen), content_type="application/json")

    app = web.Application(client_max_size=256 * 1024 * 1024)
    app.router.add_post("/ingest", ingest)
    app.router.add_get("/stats", stats)
    app.router.add_get("/seen", seen)
    return app


async def serve(delay_s: float, port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    runner = web.AppRunner(make_app(delay_s), access_log=None)
    await runner.setup()
    site = web.SockSite(runner, sock)
    await site.start()
    sys.stdout.write(orjson.dumps({"port": sock.getsockname()[1]}).decode() + "\n")
    sys.stdout.flush()
    try:
        await asyncio.Event().wait()  # until killed
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--delay-ms", type=float, default=50.0, help="sleep per POST (ms)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.delay_ms / 1000.0, args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
