"""`LogCasterHandler`: a `logging.Handler` that never blocks or breaks its application.

`emit()` formats the record (one JSON line by default, `records.JsonFormatter`)
and puts it on a bounded in-memory queue: microseconds, whatever the network
does. One daemon thread (`_Worker`) owns everything else: it batches the
queue into a `LogCasterClient` (short timeouts, backoff with jitter, acks when
the server offers them), and while the server is unreachable it appends to a
bounded fallback file (`fallback.FallbackFile`). Once the server is back the
file is resent from its start, and only when the server confirmed its last
line are newer records sent directly again, so order holds across outages.

`close()` (which `logging.shutdown` calls at interpreter exit) gives the
worker `close_timeout` seconds to deliver; what is still unsent then goes to
the fallback file, where the next handler for the same server finds it.
Records dropped past a bound (queue full, fallback file full or unwritable,
logged after close) are counted in `dropped` and reported on stderr: one
line when dropping starts, one total at close. The design and guarantees are
in docs/python-client.md.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import ssl
import sys
import threading
import time
from collections import deque
from pathlib import Path

from logcaster.client.connection import BufferFull, LogCasterClient
from logcaster.client.fallback import FallbackFile, default_path
from logcaster.client.records import JsonFormatter

IDLE_WAIT = 0.1  # how long the worker sleeps on an empty queue (also its ack-poll period)
ACK_WAIT = 0.02  # the same while lines wait for acks
RESERVE = 0.2  # of close_timeout, kept for writing the leftovers to the fallback file
DRAIN_WINDOW = 20_000  # fallback lines in flight (unconfirmed) while resending the file
DRAIN_READ = 64 * 1024  # bytes read from the fallback file per send


def _say(message: str) -> None:
    """One line on stderr; never an error of its own (stderr may be gone at exit)."""
    with contextlib.suppress(Exception):
        sys.stderr.write(message + "\n")
        sys.stderr.flush()


class _Drops:
    """Records dropped past a bound, by reason; counted from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def add(self, reason: str, n: int = 1) -> None:
        with self._lock:
            self.counts[reason] = self.counts.get(reason, 0) + n

    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def describe(self) -> str:
        with self._lock:
            return ", ".join(f"{n} {reason}" for reason, n in sorted(self.counts.items()))


class _Marker:
    """A `drain()` request in the queue: set once everything before it is delivered."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.target = 0  # the client's line count (confirmed + pending) when reached


class LogCasterHandler(logging.Handler):
    """Ships log records to LogCaster without ever stalling the caller; see the module doc."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        service: str | None = None,
        ack: bool | None = None,
        level: int = logging.NOTSET,
        queue_size: int = 10_000,
        batch_size: int = 500,
        close_timeout: float = 2.0,
        connect_timeout: float = 1.0,
        send_timeout: float = 2.0,
        fallback_path: str | os.PathLike[str] | None = None,
        fallback_max_bytes: int = 64 * 1024 * 1024,
        tls: bool | ssl.SSLContext = False,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        token: str | None = None,
    ) -> None:
        """`tls`, `ca_file`, `cert_file`, `key_file`: as `LogCasterClient`'s (TLS,
        the server verified; a client certificate for mTLS); `token`: an ingest
        token for a server with authentication on."""
        super().__init__(level)
        if queue_size < 1 or batch_size < 1:
            raise ValueError("queue_size and batch_size must be >= 1")
        self.setFormatter(JsonFormatter(service))
        self.address = (host, port)
        self.close_timeout = close_timeout
        path = Path(fallback_path) if fallback_path is not None else default_path(host, port)
        self.fallback = FallbackFile(path, fallback_max_bytes)
        self.client = LogCasterClient(
            host,
            port,
            ack=ack,
            max_pending_lines=DRAIN_WINDOW * 5,
            timeout=send_timeout,
            connect_timeout=connect_timeout,
            handshake_timeout=connect_timeout,
            tls=tls,
            ca_file=ca_file,
            cert_file=cert_file,
            key_file=key_file,
            token=token,
        )
        self._queue: queue.Queue[bytes | _Marker] = queue.Queue(queue_size)
        self._drops = _Drops()
        self._closed = False
        self._worker = _Worker(self.client, self.fallback, self._queue, self._drops, batch_size)
        self._worker.start()

    @property
    def dropped(self) -> dict[str, int]:
        """Records (lines) dropped so far, by reason."""
        return dict(self._drops.counts)

    def emit(self, record: logging.LogRecord) -> None:
        if self._closed:
            if not self._drops.counts.get("logged after close"):
                _say(f"logcaster: a record was logged after the handler for {self._target} closed")
            self._drops.add("logged after close")
            return
        try:
            data = self.format(record).encode("utf-8", "replace")
        except Exception:
            self.handleError(record)  # the application's own bug (bad % arguments)
            return
        try:
            self._queue.put_nowait(data if data.endswith(b"\n") else data + b"\n")
        except queue.Full:
            self._drops.add("queue full")

    def flush(self) -> None:
        """Does not wait (logging.shutdown calls it before close()); see `drain()`."""

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every record emitted so far is confirmed; False after `timeout`."""
        if self._closed:
            return False
        deadline = time.monotonic() + (self.close_timeout if timeout is None else timeout)
        marker = _Marker()
        try:
            self._queue.put(marker, timeout=max(0.0, deadline - time.monotonic()))
        except queue.Full:
            return False
        return marker.done.wait(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        """Deliver for at most `close_timeout` seconds, keep the rest in the fallback file."""
        if not self._closed:
            self._closed = True
            self._worker.stop(self.close_timeout)
        super().close()

    @property
    def _target(self) -> str:
        return f"{self.address[0]}:{self.address[1]}"


class _Worker(threading.Thread):
    """Moves records from the queue to the server or the fallback file; one owner of both."""

    def __init__(
        self,
        client: LogCasterClient,
        fallback: FallbackFile,
        records: queue.Queue[bytes | _Marker],
        drops: _Drops,
        batch_size: int,
    ) -> None:
        host, port = client.address
        super().__init__(name=f"logcaster-handler {host}:{port}", daemon=True)
        self.client = client
        self.fallback = fallback
        self.records = records
        self.drops = drops
        self.batch_size = batch_size
        self._target = f"{host}:{port}"
        self._stopping = threading.Event()
        self._backlog = False  # the fallback file holds records older than the queue's
        self._sent_off = 0  # fallback bytes handed to the client
        self._acked_off = 0  # fallback bytes the server confirmed
        self._marks: deque[tuple[int, int]] = deque()  # (client lines handed, file offset)
        self._markers: list[_Marker] = []
        self._half_closed = False
        self._down = False  # an outage was reported and has not ended
        self._drops_reported = False

    def stop(self, timeout: float) -> None:
        """Finish within `timeout` seconds: deliver what it can, spill the rest."""
        # Network calls end RESERVE before the deadline; the spill takes milliseconds.
        self.client.stop_at = time.monotonic() + max(0.0, timeout - RESERVE)
        self._stopping.set()
        self.join(timeout + RESERVE)

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # a bug here must not end logging unnoticed
            _say(f"logcaster: the handler for {self._target} failed: {exc!r}")
        finally:
            self._finish()

    def _run(self) -> None:
        try:
            self._backlog = self.fallback.adopt()  # left by an earlier process
        except OSError as exc:
            _say(f"logcaster: cannot open the fallback file {self.fallback.path}: {exc}")
        client = self.client
        while True:
            stopping = self._stopping.is_set()
            if stopping and (self._idle() or time.monotonic() >= client.stop_at):
                return
            busy = stopping or client.pending_lines or self._backlog
            wait = ACK_WAIT if busy else IDLE_WAIT
            self._take(wait)
            self._pump(stopping)
            self._settle_markers()
            if not self._drops_reported and self.drops.total():
                self._drops_reported = True
                _say(
                    f"logcaster: dropping records for {self._target} "
                    f"({self.drops.describe()} so far); the total is reported at close"
                )

    def _idle(self) -> bool:
        return self.records.empty() and not self._backlog and not self.client.pending_lines

    def _take(self, wait: float) -> None:
        """Route up to `batch_size` queued records, in order; wait up to `wait` for one."""
        try:
            items = [self.records.get(timeout=wait) if wait > 0 else self.records.get_nowait()]
        except queue.Empty:
            return
        with contextlib.suppress(queue.Empty):
            while len(items) < self.batch_size:
                items.append(self.records.get_nowait())
        batch: list[bytes] = []
        for item in items:
            if isinstance(item, bytes):
                batch.append(item)
                continue
            self._route(b"".join(batch))  # a drain() marker counts what came before it
            batch.clear()
            item.target = self.client.acked + self.client.pending_lines
            self._markers.append(item)
        self._route(b"".join(batch))

    def _route(self, data: bytes) -> None:
        """Newest records: straight to the server, or behind the backlog in the file."""
        if not data:
            return
        client = self.client
        if self._backlog:
            self._spill(data)
            return
        try:
            client.send(data)
        except BufferFull:
            # The server confirms too slowly: park everything, in order, and resend later.
            self._spill(client.take_pending() + data)
            return
        if not client.connected:
            self._spill(client.take_pending())

    def _pump(self, stopping: bool) -> None:
        """Read acks, resend the fallback file, notice a broken connection."""
        client = self.client
        if client.connected and client.pending_lines:
            client.poll(ACK_WAIT if stopping else 0.0)
        if self._backlog and (client.connected or client.connect()):
            self._resend_fallback()
        all_sent = not self._backlog or self._sent_off >= self.fallback.size
        ending = stopping and self.records.empty() and all_sent and not self._half_closed
        if ending and client.connected and client.pending_lines:
            client.half_close()  # the server releases and acks the held last line now
            self._half_closed = True
        if not client.connected and client.pending_lines:
            lines = client.take_pending()
            if self._backlog:  # fallback lines: still in the file, resent from the last ack
                self._marks.clear()
                self._sent_off = self._acked_off
            else:
                self._spill(lines)
        if self._down and client.connected:
            self._down = False
            _say(f"logcaster: {self._target} is reachable again")

    def _resend_fallback(self) -> None:
        client, fallback = self.client, self.fallback
        while (
            client.connected
            and self._sent_off < fallback.size
            and client.pending_lines < DRAIN_WINDOW
        ):
            chunk = fallback.read(self._sent_off, DRAIN_READ)
            if not chunk:
                break  # the file is shorter than counted: nothing more to resend
            try:
                client.send(chunk)
            except BufferFull:
                break
            self._sent_off += len(chunk)
            self._marks.append((client.acked + client.pending_lines, self._sent_off))
        while self._marks and self._marks[0][0] <= client.acked:
            self._acked_off = self._marks.popleft()[1]
        if self._acked_off >= fallback.size and client.connected:
            fallback.remove()  # every line confirmed: newer records go direct again
            self._backlog = False
            self._sent_off = self._acked_off = 0
            self._marks.clear()

    def _spill(self, data: bytes) -> None:
        """Append to the fallback file; count the lines it cannot take."""
        if not data:
            return
        if not self._down and not self._stopping.is_set():
            self._down = True
            reason = self.client.last_error or "no confirmation in time"
            _say(
                f"logcaster: {self._target} unreachable ({reason}); "
                f"records go to {self.fallback.path} until it is back"
            )
        try:
            stored = self.fallback.append(data)
        except OSError as exc:
            stored = False
            self.drops.add(f"fallback file unwritable ({exc.strerror or exc})", data.count(b"\n"))
        else:
            if not stored:
                self.drops.add("fallback file full", data.count(b"\n"))
        self._backlog = self._backlog or stored

    def _settle_markers(self) -> None:
        if self._markers and not self._backlog:
            acked = self.client.acked
            for marker in [m for m in self._markers if m.target <= acked]:
                marker.done.set()
                self._markers.remove(marker)

    def _finish(self) -> None:
        """Stopped (or failed): what is not confirmed goes to the fallback file."""
        with contextlib.suppress(Exception):
            pending = self.client.take_pending()
            if not self._backlog:
                self._spill(pending)
            leftovers = []
            while True:
                try:
                    item = self.records.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, bytes):
                    leftovers.append(item)
            self._spill(b"".join(leftovers))
            if self.fallback.size:
                reason = self.client.last_error or "not confirmed in time"
                _say(
                    f"logcaster: {self.fallback.size} bytes not delivered to {self._target} "
                    f"({reason}) are kept in {self.fallback.path}; "
                    "the next handler for it resends them"
                )
                self.fallback.close()
            else:
                self.fallback.remove()
            if self.drops.total():
                _say(f"logcaster: dropped for {self._target}: {self.drops.describe()}")
