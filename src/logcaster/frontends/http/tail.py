"""`GET /api/v1/tail` (SPEC §6): live events as Server-Sent Events.

Each stream is one subscriber of the live fan-out (pipeline/broker.py), with
QUERY's filters (query/live.py). What a stream says (`text/event-stream`):

- an event: `id: <event id>` and `data: <the event as JSON>`, the shape of a
  `JSON QUERY` row (`Event.to_dict`), under the default event type; its text
  is exact, DEL, C1, line separators and bidi controls spelled `\\uXXXX`;
- `event: skipped` with `{"count", "first_id", "last_id", "reason"}`: events
  this stream does not get (`slow`: it fell behind its queue;
  `not_in_memory`: too old to replay; `rate`: past the stream's `max_rate`,
  pipeline/tail_rate.py);
- `event: live` with `{"after_id"}` once the replay (or backlog) is over;
  `event: reset` when `since` is above every id the server delivered;
- `event: end` with `{"reason"}` last, when the server drains; then EOF;
- a `: heartbeat` comment after `http.tail_heartbeat_s` without a write.

`id:` is the stream's position: every item that moves it carries it, and so
does an id-only block when events the filter left out moved it. A client
reconnecting with `Last-Event-ID` (browsers do) resumes right after what it
was sent or told it missed: the replay comes from the memory ring.

Bounds: the subscriber's queue (`http.tail_queue_events`) is the only buffer.
Writes go out in pieces of at most `WRITE_PIECE` bytes (plus one event) and
each waits while the socket's send buffer is above its high-water mark, so a
client that stops reading holds at most that in the transport and its tail
skips. A client that disconnects is noticed within `LIVENESS_S` (aiohttp does
not cancel handlers) and unsubscribed: one timer (`_tick`) checks every stream
and wakes those owing a heartbeat, so a stream waits for events without a
timer of its own.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable

import orjson
from aiohttp import web

from logcaster.config import Config
from logcaster.event import Event
from logcaster.exceptions import QueryLimitError, QuerySyntaxError
from logcaster.frontends.http.server import json_error
from logcaster.pipeline.broker import Broker, Subscription, TooManySubscribers
from logcaster.pipeline.tail_items import Ended, Item, Live, Reset, Skipped
from logcaster.pipeline.tail_rate import MAX_RATE
from logcaster.query.live import LiveFilter, live_filter
from logcaster.query.parser import MAX_COUNT_VALUE
from logcaster.security.neutralize import json_safe
from logcaster.security.reveal import FieldQueries

PATH = "/api/v1/tail"
RETRY_MS = 2000  # the reconnect delay a browser's EventSource uses
LIVENESS_S = 0.5  # how often the ticker checks clients and heartbeats, for all streams
WRITE_PIECE = 64 * 1024
# What a write costs the loop, for the subscribers' share (pipeline/share.py):
# aiohttp's framing and the call, and the kernel's copy (0.22 ns a byte measured
# on loopback, doubled).
WRITE_COST_S = 20e-6
WRITE_COST_S_PER_BYTE = 0.5e-9
DRAIN_GRACE_S = 1.0  # on drain, a stream still stuck writing after this is cut
RENDERED_MAX_BYTES = 16 * 1024 * 1024  # the shared cache of rendered events
# Parameters about the stream's position, not its filter.
POSITION = ("since", "backlog", "max_rate")


class TailEndpoints:
    """The live tail route; `Endpoints` for `HttpServer.mount(..., streams=(PATH,))`."""

    def __init__(self, config: Config, broker: Broker) -> None:
        self._query = config.query
        self._heartbeat = config.http.tail_heartbeat_s
        self._max_backlog = config.http.tail_queue_events
        self._broker = broker
        self._streams: dict[Subscription, _Stream] = {}
        self._draining = False
        self._rendered = RenderedEvents(RENDERED_MAX_BYTES)
        self._ticker: asyncio.TimerHandle | None = None
        # Field encryption: equality on an encrypted field by its index (security/reveal.py).
        self.fields: FieldQueries | None = None
        # Whether a stream's request may go on (its token not revoked nor expired:
        # HttpServer.still_valid); checked by the ticker, an invalid one is ended.
        self.valid: Callable[[web.Request], bool] | None = None

    def routes(self) -> list[web.RouteDef]:
        # No HEAD: aiohttp would open the stream and send its body to it.
        return [web.get(PATH, self.tail, allow_head=False)]

    def drain(self) -> None:
        """End every stream (`event: end`); cut those whose client does not read."""
        self._draining = True
        for sub in list(self._streams):
            self._broker.unsubscribe(sub, "shutdown")
        if self._streams:
            asyncio.get_running_loop().call_later(DRAIN_GRACE_S, self._cut_stuck)

    def _cut_stuck(self) -> None:
        for stream in self._streams.values():
            if stream.request.transport is not None:
                stream.request.transport.abort()

    def _tick(self) -> None:
        """Every LIVENESS_S while streams are open, one timer for all of them:
        unsubscribe those whose client is gone, and wake those that owe their
        client a heartbeat or an id-only block (`Subscription.poke`)."""
        self._ticker = None
        now = time.monotonic()
        valid = self.valid
        for sub, stream in list(self._streams.items()):
            if _gone(stream.request):
                self._broker.unsubscribe(sub, "gone")
            elif valid is not None and not valid(stream.request):
                self._broker.unsubscribe(sub, "unauthorized")
            elif now - stream.last_write >= self._heartbeat or sub.position > stream.sent_id:
                sub.poke()
        self._schedule_tick()

    def _schedule_tick(self) -> None:
        if self._ticker is None and self._streams and not self._draining:
            self._ticker = asyncio.get_running_loop().call_later(LIVENESS_S, self._tick)

    async def tail(self, request: web.Request) -> web.StreamResponse:
        if self._draining:
            return json_error(503, "the server is shutting down", {"Retry-After": "1"})
        try:
            since, backlog = self._position(request)
            rate = _count("max_rate", request.query.get("max_rate", "0"))
            if rate > MAX_RATE:
                raise QuerySyntaxError(f"max_rate={rate} is over {MAX_RATE} events a second")
            params = [(k, v) for k, v in request.query.items() if k.lower() not in POSITION]
            what = live_filter(params, self._query)
            if self.fields is not None and what.query.fields:
                what = LiveFilter(self.fields.seal_query(what.query))
        except (QuerySyntaxError, QueryLimitError) as exc:
            return json_error(400, str(exc))
        try:
            sub = self._broker.subscribe(what, since=since, backlog=backlog, max_rate=rate)
        except TooManySubscribers as exc:
            return json_error(503, f"too many live tails: {exc}", {"Retry-After": "5"})
        stream = self._streams[sub] = _Stream(request)
        self._schedule_tick()
        try:
            return await self._stream(stream, sub)
        finally:
            self._streams.pop(sub, None)
            self._broker.unsubscribe(sub)

    def _position(self, request: web.Request) -> tuple[int | None, int]:
        """`since` (the Last-Event-ID header wins: a browser reconnecting keeps the
        URL's since=) and `backlog`."""
        raw = request.headers.get("Last-Event-ID") or request.query.get("since")
        since = None if raw is None else _count("since (Last-Event-ID)", raw)
        backlog = _count("backlog", request.query.get("backlog", "0"))
        if backlog > self._max_backlog:
            raise QuerySyntaxError(
                f"backlog={backlog} is over http.tail_queue_events={self._max_backlog}"
            )
        return since, backlog

    async def _stream(self, stream: _Stream, sub: Subscription) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",  # nginx: pass events on at once
            }
        )
        response.force_close()  # the end of the stream is the end of the connection
        try:
            await response.prepare(request := stream.request)
            await response.write(b"retry: %d\n\n" % RETRY_MS)
            stream.last_write = time.monotonic()
            while True:
                items = await sub.get()  # [] when poked by _tick
                if items:
                    ended = await self._send(response, items, sub.position)
                    stream.sent_id = sub.position
                    stream.last_write = time.monotonic()
                    if ended:
                        break
                    continue
                block = b""
                if sub.position > stream.sent_id:  # filtered-out events moved the position
                    block = b"id: %d\n\n" % sub.position
                    stream.sent_id = sub.position
                if time.monotonic() - stream.last_write >= self._heartbeat:
                    block += b": heartbeat\n\n"
                if block and not _gone(request):
                    await response.write(block)
                    stream.last_write = time.monotonic()
        except ConnectionError:
            pass  # the client went away (aiohttp's reset errors are ConnectionErrors)
        return response

    async def _send(self, response: web.StreamResponse, items: list[Item], position: int) -> bool:
        """Write `items` in pieces; True after `Ended`. Rendering and writing count
        against the subscribers' share of the loop (pipeline/share.py)."""
        started = time.perf_counter()
        parts: list[bytes] = []
        size = 0
        ended = False
        top = 0  # the highest id the pieces carry
        block = self._rendered.block
        for item in items:
            if isinstance(item, Event):
                piece = block(item)
                top = item.id  # events come in id order
            else:
                ended = ended or isinstance(item, Ended)
                piece, moved_to = _notice(item)
                top = max(top, moved_to)
            parts.append(piece)
            size += len(piece)
            if size >= WRITE_PIECE:
                self._broker.spend(time.perf_counter() - started)
                await self._write(response, b"".join(parts))
                parts, size = [], 0
                started = time.perf_counter()
        if position > top and not ended:
            parts.append(b"id: %d\n\n" % position)  # left-out events or a notice moved it
        self._broker.spend(time.perf_counter() - started)
        if parts:
            await self._write(response, b"".join(parts))
        return ended

    async def _write(self, response: web.StreamResponse, data: bytes) -> None:
        # Charged by estimate, not timed: the time would include the other tasks
        # that ran while it waited for the socket.
        self._broker.spend(WRITE_COST_S + len(data) * WRITE_COST_S_PER_BYTE)
        await response.write(data)


class _Stream:
    """An open stream's state the ticker reads."""

    __slots__ = ("last_write", "request", "sent_id")

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.last_write = time.monotonic()
        self.sent_id = -1  # the last position written as an `id:`


class RenderedEvents:
    """Events' SSE blocks, shared by every stream: subscribers that pass the same
    event (the common case: many tails, a few filters) render it once. Keyed by
    id (unique in a server's run), the oldest dropped past `max_bytes`."""

    __slots__ = ("_blocks", "_bytes", "max_bytes")

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._blocks: OrderedDict[int, bytes] = OrderedDict()  # oldest first
        self._bytes = 0

    def block(self, ev: Event) -> bytes:
        block = self._blocks.get(ev.id)
        if block is None:
            # Terminal-safe JSON (security/neutralize.py): the same value, inert
            # when a client prints the raw stream (curl, `logcaster tail --json`).
            data = json_safe(orjson.dumps(ev.to_dict(), default=str))
            block = b"id: %d\ndata: %s\n\n" % (ev.id, data)
            self._blocks[ev.id] = block
            self._bytes += len(block)
            blocks = self._blocks
            while self._bytes > self.max_bytes and len(blocks) > 1:
                self._bytes -= len(blocks.popitem(last=False)[1])
        return block


def _notice(item: Skipped | Live | Reset | Ended) -> tuple[bytes, int]:
    """A notice's SSE block, and the position it carries (0: none)."""
    if isinstance(item, Skipped):
        doc: dict[str, object] = {
            "count": item.count,
            "first_id": item.first_id,
            "last_id": item.last_id,
            "reason": item.reason,
        }
        block = b"id: %d\nevent: skipped\ndata: %s\n\n" % (item.last_id, orjson.dumps(doc))
        return block, item.last_id
    if isinstance(item, Live):
        data = orjson.dumps({"after_id": item.after_id})
        return b"id: %d\nevent: live\ndata: %s\n\n" % (item.after_id, data), item.after_id
    if isinstance(item, Reset):
        doc = {"since": item.since, "last_id": item.last_id}
        return b"event: reset\ndata: %s\n\n" % orjson.dumps(doc), 0
    return b"event: end\ndata: %s\n\n" % orjson.dumps({"reason": item.reason}), 0


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _count(name: str, value: str) -> int:
    text = value.strip()
    # ASCII digits only: int() would also take "1_000" and other scripts' digits.
    n = int(text) if text.isascii() and text.isdigit() and len(text) <= 19 else -1
    if not 0 <= n <= MAX_COUNT_VALUE:  # ids and counts are signed 64-bit
        raise QuerySyntaxError(
            f"{name} must be an integer from 0 to {MAX_COUNT_VALUE}, not {value!r}"
        )
    return n
