"""`POST /api/v1/logs` (SPEC §2): one request, one batch into the pipeline.

Order of a request, each step bounded by `http.request_timeout`:
1. Refused at once while draining (503) or by the rate-limit hook (429).
2. With the `block` policy and a full queue, wait for room *before reading
   the body*: the body stays in the kernel's socket buffers, so waiting
   senders cost no memory (TCP pushes back, as on the line port). Past the
   timeout: 503 with Retry-After.
3. Read and decode the body (body.py, payload.py): 413, 415 or 400, and then
   nothing of the request is taken.
4. Offer the texts as one batch. `reject` refusing them: 503. Drop and
   sample policies may keep fewer: the answer says how many were accepted.
5. With `?ack=1` (or `X-LogCaster-Ack: 1`), answer only once every accepted
   event is durable (persist.fsync), as acknowledged TCP does. A timeout is
   a 504: the events were taken and may be stored, so a resend can duplicate
   them (at-least-once; docs/http-api.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aiohttp import web

from logcaster.config import Config
from logcaster.frontends.http.body import BodyError, read_body
from logcaster.frontends.http.payload import decode
from logcaster.frontends.http.server import HttpServer, json_error, json_response
from logcaster.parsing.multiline import Grouper
from logcaster.pipeline.framing import Framer, LineFramer
from logcaster.pipeline.pipeline import Pipeline
from logcaster.stats import Stats

LISTENER = "http"  # the source's name before ':' (stats.listener_of)
RETRY_AFTER_S = "1"
EARLY_S = 0.05
# A rate limiter (the security issue's): the seconds to wait before retrying, or None.
RateLimit = Callable[[web.Request], float | None]


class IngestEndpoints:
    """The ingest route; `Endpoints` for `HttpServer.mount`."""

    def __init__(
        self, config: Config, pipeline: Pipeline, stats: Stats, server: HttpServer
    ) -> None:
        self._pipeline = pipeline
        self._stats = stats
        self._server = server
        self._max_body = config.http.max_body_bytes
        self._max_line = config.ingest.max_line_bytes
        self._timeout = config.http.request_timeout
        self._block = config.queue.policy == "block"
        grouper = Grouper.for_listener(config.multiline, "http")
        multiline = config.multiline
        max_line = self._max_line
        self._framer: Callable[[], Framer] = lambda: LineFramer(max_line, multiline, grouper)
        self.rate_limit: RateLimit | None = None
        self._room_waiters: set[asyncio.Future[None]] = set()
        self._draining = False

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/api/v1/logs", self.post)]

    def drain(self) -> None:
        self._draining = True
        for waiter in list(self._room_waiters):
            if not waiter.done():
                waiter.set_exception(_Draining())

    async def post(self, request: web.Request) -> web.Response:
        started = time.monotonic()
        if self._draining:
            return _unavailable("the server is shutting down")
        if self.rate_limit is not None:
            wait = self.rate_limit(request)
            if wait is not None:
                return json_error(429, "rate limited", {"Retry-After": str(max(1, round(wait)))})
        ack = _asks_ack(request)
        try:
            if self._block and self._pipeline.queue.full:
                await asyncio.wait_for(self._wait_for_room(), self._left(started))
            body = await read_body(request, self._max_body)
            texts = decode(body, request.content_type, self._max_line, self._framer)
        except BodyError as exc:
            return json_error(exc.status, exc.reason)
        except _Draining:
            return _unavailable("the server is shutting down")
        except TimeoutError:
            return _unavailable("the queue is full; try again")
        if self._pipeline.queue.closed:
            # A request begun before the drain is taken while the queue is open
            # (the server's stop waits for it); after that it must not be.
            return _unavailable("the server is shutting down")
        if texts.truncated:
            self._stats.truncate(LISTENER, texts.truncated)
        offered = self._pipeline.offer(texts.texts, _source(request))
        if offered.refused:
            return _unavailable("the queue is full (queue.policy reject); try again")
        doc: dict[str, object] = {"accepted": offered.kept}
        if offered.kept < len(texts.texts):
            doc["dropped"] = len(texts.texts) - offered.kept
        last_id = self._pipeline.last_id
        if ack and offered.kept and not await self._durable(request, last_id, self._left(started)):
            doc["error"] = "timed out waiting for durability: the events may be stored"
            return json_response(doc, 504)
        return json_response(doc)

    def _left(self, started: float) -> float:
        """Seconds this request may still wait, a little inside the server's own
        timeout so the answer says what was waited for."""
        return max(0.0, self._timeout - EARLY_S - (time.monotonic() - started))

    async def _wait_for_room(self) -> None:
        """Wait until the queue drained below its low watermark (`block`)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._room_waiters.add(waiter)

        def wake() -> None:
            if not waiter.done():
                waiter.set_result(None)

        self._pipeline.queue.on_space(wake)
        try:
            await waiter
        finally:
            self._room_waiters.discard(waiter)

    async def _durable(self, request: web.Request, last_id: int, within_s: float) -> bool:
        """Wait until `last_id` is durable; the drain does not wait for this request."""
        future = self._pipeline.wait_durable(last_id)
        unpark = self._server.park(request)
        try:
            await asyncio.wait_for(future, within_s)
        except TimeoutError:
            return False
        finally:
            unpark()
        return True


class _Draining(Exception):
    pass


def _asks_ack(request: web.Request) -> bool:
    flag = request.query.get("ack") or request.headers.get("X-LogCaster-Ack") or ""
    return flag.strip().lower() in ("1", "true", "yes")


def _source(request: web.Request) -> str:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return f"{LISTENER}:{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else LISTENER


def _unavailable(reason: str) -> web.Response:
    return json_error(503, reason, {"Retry-After": RETRY_AFTER_S})
