"""`POST /api/v1/logs` (SPEC §2): one request, all or nothing, into the pipeline.

Order of a request, each step bounded by `http.request_timeout`:
1. Refused at once while draining (503), by the rate-limit hook (429), or
   for a multipart upload (415).
2. With the `block` policy and a full queue, wait for room *before reading
   the body*: the body stays in the kernel's socket buffers, so waiting
   senders cost no memory (TCP pushes back, as on the line port). Past the
   timeout: 503 with Retry-After.
3. Reserve the body's bytes in the server-wide budget (`BodyBudget`,
   `http.max_inflight_bytes`), read and decode it (body.py, payload.py):
   413, 415 or 400, and then nothing of the request is taken.
4. With `block`, wait for room again (requests woken together must not all
   pour in), then offer the texts in batches of at most BATCH_EVENTS
   (`reject`: one batch, all or nothing, 503 when refused). Drop and sample
   policies may keep fewer: the answer says how many were accepted.
5. With `?ack=1` (or `X-LogCaster-Ack: 1`), answer only once every accepted
   event is durable (persist.fsync), as acknowledged TCP does. A timeout is
   a 504: the events were taken and may be stored, so a resend can duplicate
   them (at-least-once; docs/http-api.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from math import ceil

from aiohttp import web

from logcaster.config import Config
from logcaster.frontends.http.body import BodyError, read_body
from logcaster.frontends.http.payload import Texts, decode
from logcaster.frontends.http.server import HttpServer, client_of, json_error, json_response
from logcaster.parsing.multiline import Grouper
from logcaster.pipeline.framing import Framer, LineFramer
from logcaster.pipeline.pipeline import Pipeline
from logcaster.stats import Stats

LISTENER = "http"  # the source's name before ':' (stats.listener_of)
RETRY_AFTER_S = "1"
BATCH_EVENTS = 4096  # a request's events go to the queue in batches of at most this many
EARLY_S = 0.05


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
        self._ack_compat = config.http.ack_compat
        self._block = config.queue.policy == "block"
        grouper = Grouper.for_listener(config.multiline, "http")
        multiline = config.multiline
        max_line = self._max_line
        self._framer: Callable[[], Framer] = lambda: LineFramer(max_line, multiline, grouper)
        self._room_waiters: set[asyncio.Future[None]] = set()
        self._space_asked = False  # our one on_space callback is registered
        self._reject = config.queue.policy == "reject"
        self._budget = BodyBudget(config.http.max_inflight_bytes)
        self._draining = False

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/api/v1/logs", self.post)]

    def drain(self) -> None:
        self._draining = True
        self._budget.close()
        for waiter in list(self._room_waiters):
            if not waiter.done():
                waiter.set_exception(_Draining())

    async def post(self, request: web.Request) -> web.Response:
        """`POST /api/v1/logs`: JSON, NDJSON or text lines (payload.py)."""
        if request.content_type.startswith("multipart/"):
            return json_error(415, "multipart bodies are not taken: send the file itself")
        max_line, framer = self._max_line, self._framer
        taken = await self.take(
            request,
            lambda body: decode(body, request.content_type, max_line, framer),
            ack=asks_ack(request),
        )
        if taken.status != 200:
            headers = {"Retry-After": str(taken.retry_after)} if taken.retry_after else None
            if taken.status == 504:  # taken, not known durable
                return json_response({"accepted": taken.kept, "error": taken.error}, 504)
            return json_error(taken.status, taken.error or "refused", headers)
        doc: dict[str, object] = {"accepted": taken.kept}
        if taken.kept < taken.total:
            doc["dropped"] = taken.total - taken.kept
        return json_response(doc)

    async def take(
        self,
        request: web.Request,
        decoder: Callable[[bytes], Texts],
        *,
        ack: bool = False,
        protocol: str = LISTENER,
    ) -> Taken:
        """Read a request's body within its bounds, decode it into event texts and
        offer them to the pipeline: every HTTP ingest protocol's intake (this
        route's, and OTLP, Elasticsearch bulk, Loki push), with the rate limits,
        the queue policy, the bounded body budget and, with `ack`, durability.
        `decoder` raises BodyError for a body it cannot take. The caller renders
        the `Taken` in its protocol's own format. `protocol` names the events'
        source (`otlp:ADDR:PORT`): counted by it (STATS, /metrics by listener).
        With `http.ack_compat` every request waits for durability (a shipper's 2xx
        then means stored), as with `ack`."""
        started = time.monotonic()
        ack = ack or self._ack_compat
        if self._draining:
            return _refusal(503, "the server is shutting down")
        limits = self._server.guard.limits
        client = client_of(request)
        if limits.ingest_on:
            # A request past the client's rate is taken (lossless); the bucket's debt
            # refuses the next ones until paid (security/ratelimit.py).
            wait = limits.ingest_wait(client)
            if wait > 0:
                limits.count(LISTENER, "ingest")
                return Taken(status=429, error="rate limited", retry_after=max(1, ceil(wait)))
        try:
            await self._room(started)  # before reading: waiting senders cost no memory
            async with self._budget.hold(self._reserve(request), self._left(started)):
                body = await read_body(request, self._max_body)
                texts = decoder(body)
                del body
                # Woken together, waiters must not all pour into the queue at once.
                await self._room(started)
                if self._pipeline.queue.closed:
                    # Taken while the queue is open (the server's stop waits for a
                    # request begun before the drain); after that, not at all.
                    return _refusal(503, "the server is shutting down")
                kept, refused = self._offer(texts.texts, _source(request, protocol))
        except BodyError as exc:
            return Taken(status=exc.status, error=exc.reason)
        except _Draining:
            return _refusal(503, "the server is shutting down")
        except TimeoutError:
            return _refusal(503, "the queue is full; try again")
        except _BudgetFull:
            return _refusal(503, "too many request bodies in flight (http.max_inflight_bytes)")
        total = len(texts.texts)
        if limits.ingest_on:
            limits.ingest(client, total, sum(map(len, texts.texts)), LISTENER)
        if texts.truncated:
            self._stats.truncate(LISTENER, texts.truncated)
        if refused:
            return _refusal(503, "the queue is full (queue.policy reject); try again")
        last_id = self._pipeline.last_id
        if ack and kept and not await self._durable(request, last_id, self._left(started)):
            error = "timed out waiting for durability: the events may be stored"
            return Taken(kept, total, status=504, error=error)
        return Taken(kept, total)

    def _offer(self, texts: list[bytes], source: str) -> tuple[int, bool]:
        """Offer the texts as batches of at most BATCH_EVENTS; (kept, refused).

        `reject` takes all or nothing, so a refusal leaves nothing stored: one
        batch (it cannot pass the queue's own bound). The other policies weigh
        each batch, and a huge request never becomes one huge batch the memory
        ring and the live tail would have to parse whole.
        """
        pipeline = self._pipeline
        if self._reject:
            offered = pipeline.offer(texts, source)
            return offered.kept, offered.refused
        kept = 0
        for i in range(0, len(texts), BATCH_EVENTS):
            kept += pipeline.offer(texts[i : i + BATCH_EVENTS], source).kept
        return kept, False

    def _reserve(self, request: web.Request) -> int:
        """Bytes a body may hold in memory: its declared length if plain, else the bound."""
        length = request.content_length
        encoded = request.headers.get("Content-Encoding", "identity").lower() != "identity"
        if length is None or encoded:
            return self._max_body
        return min(length, self._max_body)

    def _left(self, started: float) -> float:
        """Seconds this request may still wait, a little inside the server's own
        timeout so the answer says what was waited for."""
        return max(0.0, self._timeout - EARLY_S - (time.monotonic() - started))

    async def _room(self, started: float) -> None:
        """With `block`, wait while the queue is full (TimeoutError past the request's
        time). One `on_space` callback serves every waiting request, so requests
        that give up leave nothing behind in the queue."""
        queue = self._pipeline.queue
        while self._block and queue.full:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._room_waiters.add(waiter)
            if not self._space_asked:
                self._space_asked = True
                queue.on_space(self._wake_waiters)
            try:
                await asyncio.wait_for(waiter, self._left(started))
            finally:
                self._room_waiters.discard(waiter)

    def _wake_waiters(self) -> None:
        self._space_asked = False
        for waiter in list(self._room_waiters):
            if not waiter.done():
                waiter.set_result(None)

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


@dataclass(frozen=True, slots=True)
class Taken:
    """What `IngestEndpoints.take` made of a request: events kept of the total
    decoded, or a refusal (`status` not 200, `error` saying why, `retry_after`
    seconds for 429 and 503)."""

    kept: int = 0
    total: int = 0
    status: int = 200
    error: str | None = None
    retry_after: int | None = None


def _refusal(status: int, error: str) -> Taken:
    return Taken(status=status, error=error, retry_after=int(RETRY_AFTER_S))


class _Draining(Exception):
    pass


class _BudgetFull(Exception):
    pass


class BodyBudget:
    """Request bodies held in memory at once, in bytes (`http.max_inflight_bytes`).

    A request reserves what its body may take before reading it and waits, up
    to its deadline, while the reservations of others would pass the budget;
    one request alone may always proceed (its body is bounded by
    `http.max_body_bytes`), so the budget never deadlocks.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.held = 0
        self._freed = asyncio.Event()
        self._closed = False

    def close(self) -> None:
        """The server is draining: waiting requests give up (503)."""
        self._closed = True
        self._freed.set()

    @contextlib.asynccontextmanager
    async def hold(self, nbytes: int, within_s: float) -> AsyncIterator[None]:
        deadline = time.monotonic() + within_s
        while self.held and self.held + nbytes > self.max_bytes:
            if self._closed:
                raise _Draining()
            left = deadline - time.monotonic()
            if left <= 0:
                raise _BudgetFull()
            self._freed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._freed.wait(), left)
        self.held += nbytes
        try:
            yield
        finally:
            self.held -= nbytes
            self._freed.set()


def asks_ack(request: web.Request) -> bool:
    """`?ack=1` or `X-LogCaster-Ack: 1` (every HTTP ingest protocol takes them)."""
    flag = request.query.get("ack") or request.headers.get("X-LogCaster-Ack") or ""
    return flag.strip().lower() in ("1", "true", "yes")


def _source(request: web.Request, protocol: str = LISTENER) -> str:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return f"{protocol}:{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else protocol
