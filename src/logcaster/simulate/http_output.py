"""The simulator's HTTP output: batches POSTed to LogCaster's `POST /api/v1/logs`.

    http://HOST[:PORT][/PATH][?ack=1]    (https:// too; no path: /api/v1/logs)

`--format json` (the default for this output) posts NDJSON
(`application/x-ndjson`), one JSON object per event, traces included.
`--format text` posts the seed text as `text/plain`, which the server frames
and groups (stack traces) exactly as it does a TCP connection.

Batches and memory. A pacer batch is cut into pieces of at most
`BATCH_EVENTS` events and `BATCH_BYTES` bytes; pieces waiting for a request
are joined into one POST up to the same bounds. At most `MAX_IN_FLIGHT`
POSTs are out (or waiting to retry) at once. While they are, the pieces
after them wait in one pending batch; once it is full, `write` waits for a
request to finish (the server's pace becomes the simulator's, as a slow TCP
server's does), at most `SEND_TIMEOUT` — and not at all while the server is
unreachable: then the pending batch is counted unsent at once, so a dead
server costs the pacer nothing, as with the TCP outputs.

Answers. 2xx: the batch is sent (with `?ack=1` the server answered only
once its events were durable). 429, 502, 503, 504 and connection errors are
retried, every request of the output waiting on one shared backoff:
exponential with jitter, never sooner than the server's `Retry-After`
(capped at `RETRY_AFTER_MAX`). A batch still undelivered `RETRY_FOR` after
its first try is given up and counted unsent. Other answers (400, 413, ...)
are not retried: the events are unsent and the server's reason is shown.

At-least-once: a 504 under `?ack=1` means the events were taken but not
yet durable, and a connection that breaks before the answer may have been
read by the server; both are retried, so such events can arrive twice.

A connection can fail during TLS too: https:// is accepted as aiohttp does
it (the system's trust store verifies the server), for a TLS-terminating
proxy today and LogCaster's own TLS later.

The requests run on an event loop in a thread of their own; the pacer's
`write` only formats and hands over.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import os
import random
import ssl
import threading
import time
from collections.abc import Callable

import aiohttp
import orjson

from logcaster.simulate.formats import FORMATS, Stamps
from logcaster.simulate.generator import SimEvent

BATCH_EVENTS = 1000
BATCH_BYTES = 1 << 20
MAX_IN_FLIGHT = 4
RETRY_STATUSES = frozenset({429, 502, 503, 504})
RETRY_FOR = 30.0  # seconds a batch may keep retrying before it is counted unsent
RETRY_AFTER_MAX = 30.0
BACKOFF_START = 0.1
BACKOFF_MAX = 5.0
CONNECT_TIMEOUT = 2.0
# Longer than the server's own request bound (http.request_timeout, 30 s), after
# which it answers 503 or 504 itself: a timeout here means a server that hangs.
READ_TIMEOUT = 40.0
SEND_TIMEOUT = 10.0  # the longest a full window holds up the pacer, or close() waits
CLOSE_GRACE = 1.0  # close() with the server unreachable: how long to wait for it
CONTENT_TYPES = {"json": "application/x-ndjson", "text": "text/plain; charset=utf-8"}
DEFAULT_PATH = "/api/v1/logs"

Notify = Callable[[str], None]


class HttpOutput:
    """POSTs batches to one URL; `sent`, `unsent` and `reconnects` as the other outputs."""

    def __init__(
        self, url: str, target: str, fmt: str, notify: Notify, tls: ssl.SSLContext | None = None
    ) -> None:
        self._url = url
        self._ssl = tls  # https: how the server is verified (None: aiohttp's default)
        self._target = target  # as the user wrote it, for messages
        self._format = FORMATS[fmt]
        self._headers = {"Content-Type": CONTENT_TYPES[fmt]}
        self._stamps = Stamps()
        self._notify = notify
        self._cond = threading.Condition()
        # Guarded by _cond: pieces waiting for a request, requests out, counters.
        self._pending: list[tuple[bytes, int]] = []
        self._pending_events = 0
        self._pending_bytes = 0
        self._in_flight = 0
        self.sent = self.unsent = 0
        self.reconnects = 0
        self._up = True  # the last try got an HTTP answer (or none was made yet)
        self._answered_once = False
        self._refusals: set[int] = set()  # statuses already reported
        self._busy_reported = False
        # Loop thread only: the shared backoff.
        self._resume_at = 0.0
        self._delay = BACKOFF_START
        # Jitter only: independent of the seeded generator, whose output it must not change.
        self._jitter = random.Random()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._session = asyncio.run_coroutine_threadsafe(self._open(), self._loop).result()

    async def _open(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=MAX_IN_FLIGHT, ssl=self._ssl or True),
            timeout=aiohttp.ClientTimeout(sock_connect=CONNECT_TIMEOUT, sock_read=READ_TIMEOUT),
        )

    # ------------------------------------------------------------------ the pacer's side

    def write(self, events: list[SimEvent]) -> None:
        # Formatted even when no server is there: the simulated stream (and its
        # clock) must not depend on the network.
        pieces: list[tuple[bytes, int]] = []
        for i in range(0, len(events), BATCH_EVENTS):
            self._cut(events[i : i + BATCH_EVENTS], pieces)
        with self._cond:
            for piece in pieces:
                self._pending.append(piece)
                self._pending_events += piece[1]
                self._pending_bytes += len(piece[0])
                self._pump()
                if self._pending_full():
                    self._wait_for_room()

    def _cut(self, events: list[SimEvent], out: list[tuple[bytes, int]]) -> None:
        """Format `events` into pieces of at most BATCH_BYTES (unless one event is more)."""
        body = self._format(events, self._stamps)
        if len(body) <= BATCH_BYTES or len(events) == 1:
            out.append((body, len(events)))
            return
        half = len(events) // 2
        self._cut(events[:half], out)
        self._cut(events[half:], out)

    def _pending_full(self) -> bool:
        return self._pending_events >= BATCH_EVENTS or self._pending_bytes >= BATCH_BYTES

    def _wait_for_room(self) -> None:
        """A full batch waits and every request is out: wait for one to end, or give
        the batch up (at once while the server is unreachable)."""
        deadline = time.monotonic() + SEND_TIMEOUT
        while self._pending_full() and self._in_flight >= MAX_IN_FLIGHT:
            left = deadline - time.monotonic()
            if not self._up or left <= 0:
                if self._up:
                    self._notify(
                        f"simulate: {self._target} finished no request in {SEND_TIMEOUT:g} s; "
                        f"{self._pending_events} events not sent"
                    )
                self.unsent += self._pending_events
                self._pending.clear()
                self._pending_events = self._pending_bytes = 0
                return
            self._cond.wait(left)

    def _pump(self) -> None:
        """Start requests for the pending pieces while there is room (under _cond)."""
        while self._pending and self._in_flight < MAX_IN_FLIGHT:
            parts: list[bytes] = []
            events = size = 0
            while self._pending:
                body, n = self._pending[0]
                if parts and (events + n > BATCH_EVENTS or size + len(body) > BATCH_BYTES):
                    break
                self._pending.pop(0)
                parts.append(body)
                events += n
                size += len(body)
            self._pending_events -= events
            self._pending_bytes -= size
            self._in_flight += 1
            self._loop.call_soon_threadsafe(self._start, b"".join(parts), events)

    def close(self) -> None:
        """Send what is pending; wait for the requests (shorter while the server is
        away), then count what is still undelivered as unsent."""
        started = time.monotonic()
        with self._cond:
            while self._pending or self._in_flight:
                self._pump()
                grace = SEND_TIMEOUT if self._up else CLOSE_GRACE
                left = started + grace - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.1))
            self.unsent += self._pending_events
            self._pending.clear()
            self._pending_events = self._pending_bytes = 0
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    async def _shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()  # its events are counted unsent as it ends
        if self._tasks:
            await asyncio.wait(list(self._tasks))
        await self._session.close()

    # ------------------------------------------------------------------ the loop's side

    def _start(self, body: bytes, events: int) -> None:
        task = self._loop.create_task(self._deliver(body, events))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, body: bytes, events: int) -> None:
        """POST one batch until it is taken, refused, or out of retry time."""
        loop = self._loop
        give_up = loop.time() + RETRY_FOR
        delivered = False
        try:
            while True:
                wait = self._resume_at - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                status, reason, retry_after = await self._post(body)
                if status is not None and status < 300:
                    self._delay = BACKOFF_START
                    delivered = True
                    return
                if status is not None and status not in RETRY_STATUSES:
                    self._refused(status, reason, events)
                    return
                delay = self._backoff(retry_after)
                if loop.time() + delay > give_up:
                    self._notify(
                        f"simulate: {self._target}: gave up on {events} events after "
                        f"{RETRY_FOR:g} s of retries ({reason})"
                    )
                    return
                self._resume_at = max(self._resume_at, loop.time() + delay)
                if status is not None:
                    self._busy(status, reason)
        finally:
            with self._cond:
                if delivered:
                    self.sent += events
                else:
                    self.unsent += events
                self._in_flight -= 1
                self._pump()
                self._cond.notify_all()

    async def _post(self, body: bytes) -> tuple[int | None, str, float | None]:
        """(status, reason, Retry-After seconds); status None: no answer (connection)."""
        try:
            async with self._session.post(self._url, data=body, headers=self._headers) as resp:
                text = await resp.text(errors="replace")
                status = resp.status
                reason = _reason(text, resp.reason)
                retry_after = _retry_after(resp.headers.get("Retry-After"))
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            reason = _why(exc)
            with self._cond:
                was_up, self._up = self._up, False
                self._cond.notify_all()  # a write waiting for room stops waiting
            if was_up:  # once per outage, not once per attempt
                self._notify(
                    f"simulate: {self._target} unreachable ({reason}); retrying with backoff"
                )
            return None, reason, None
        with self._cond:
            was_up, self._up = self._up, True
            if not was_up and self._answered_once:
                self.reconnects += 1
            self._answered_once = True
        if not was_up:
            again = "re" if self.reconnects else ""
            self._notify(f"simulate: {again}connected to {self._target}")
        if status < 300:
            self._busy_reported = False
        return status, reason, retry_after

    def _backoff(self, retry_after: float | None) -> float:
        """The shared exponential backoff, jittered, never below Retry-After."""
        delay = self._delay * (0.5 + self._jitter.random())
        self._delay = min(self._delay * 2, BACKOFF_MAX)
        if retry_after is not None:
            # Jitter upwards only: never back before the server asked.
            asked = min(retry_after, RETRY_AFTER_MAX)
            delay = max(delay, asked * (1 + 0.2 * self._jitter.random()))
        return delay

    def _busy(self, status: int, reason: str) -> None:
        if not self._busy_reported:  # once until a batch goes through again
            self._busy_reported = True
            self._notify(f"simulate: {self._target} answered {status} ({reason}); retrying")

    def _refused(self, status: int, reason: str, events: int) -> None:
        if status not in self._refusals:  # each kind of refusal once
            self._refusals.add(status)
            self._notify(
                f"simulate: {self._target} refused {events} events: HTTP {status} ({reason}); "
                f"not retried"
            )


def _reason(text: str, fallback: str | None) -> str:
    """The server's JSON `error`, else the start of the body, else the status phrase."""
    with contextlib.suppress(orjson.JSONDecodeError):
        doc = orjson.loads(text)
        if isinstance(doc, dict) and isinstance(doc.get("error"), str):
            return str(doc["error"])
    return text.strip()[:200] or fallback or ""


def _why(exc: BaseException) -> str:
    """A failed request in a few words: `Connection refused`, not aiohttp's paragraph."""
    if isinstance(exc, aiohttp.ClientConnectorError) and not isinstance(
        exc, aiohttp.ClientSSLError
    ):
        errno = exc.os_error.errno
        if errno:
            return os.strerror(errno)
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    return None
