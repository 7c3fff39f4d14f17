"""A Python client for LogCaster's TCP ingest with acknowledged delivery.

    with LogCasterClient("127.0.0.1", 9999) as client:
        client.send(b"first line\\nsecond line\\n")
        client.flush(timeout=5)  # True once the server confirmed every line

The protocol is in docs/acknowledged-delivery.md: after the handshake
`#LOGCASTER ACK 1`, the server confirms lines with `ACK <n>`, `n` counting the
lines of this connection that are durable under its fsync setting. The client
keeps every line until it is confirmed. When the connection breaks it
reconnects (exponential backoff with jitter) and sends the unconfirmed lines
again, so delivery is at-least-once: a line can arrive twice only if the
server stored it and died before its ack reached the client. `NACK <n>`
(the server's queue policy `reject` refused what followed line `n`) is
handled the same way: back off, reconnect, resend.

Memory is bounded: at most `max_pending_lines` unconfirmed lines. `send`
waits up to `timeout` for acks to make room, then raises `BufferFull` (the
caller decides: retry, drop and count, or fail). Not thread-safe; share one
client between threads only under a lock (`LogCasterHandler` does).
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import time
from collections import deque
from types import TracebackType

ACK_HANDSHAKE = b"#LOGCASTER ACK 1\n"
ACK_ACCEPTED = b"#OK ACK 1\n"
BACKOFF_START = 0.05
BACKOFF_MAX = 5.0
MAX_REPLY_LINE = 64  # "ACK <20 digits>\n" and the handshake reply are shorter


class ClientError(Exception):
    """The server broke the protocol, or the client is closed."""


class BufferFull(ClientError):
    """`max_pending_lines` unconfirmed lines are waiting and no ack made room in time."""


class LogCasterClient:
    """Sends newline-terminated lines to one LogCaster ingest port; see the module doc."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ack: bool = True,
        max_pending_lines: int = 200_000,
        timeout: float = 30.0,
        connect_timeout: float = 2.0,
    ) -> None:
        if max_pending_lines < 1:
            raise ValueError("max_pending_lines must be >= 1")
        self._address = (host, port)
        self.ack = ack
        self.max_pending_lines = max_pending_lines
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.acked = 0  # lines confirmed, over all connections
        self.rejections = 0  # NACKs: the server refused lines (queue policy reject)
        self.connects = 0
        self._sock: socket.socket | None = None
        self._pending: deque[tuple[bytes, int]] = deque()  # unconfirmed chunks and their lines
        self._pending_lines = 0
        self._conn_acked = 0  # the last ACK count on this connection
        self._replies = b""  # unparsed bytes from the server
        self._delay = BACKOFF_START
        self._next_try = 0.0
        self._closed = False
        self._closing = False  # close() is flushing: half-close every connection
        self._jitter = random.Random()

    # -- public ----------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        return self._address

    @address.setter
    def address(self, address: tuple[str, int]) -> None:
        """Point the client at another server: the next (re)connect goes there, at once."""
        self._address = address
        self._next_try = 0.0
        self._delay = BACKOFF_START

    @property
    def pending_lines(self) -> int:
        """Lines sent (or waiting to be sent) and not yet confirmed."""
        return self._pending_lines

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def send(self, data: bytes) -> None:
        """Send whole lines (`data` must end with a newline); keep them until confirmed.

        Never raises for a missing server: the lines wait in the buffer and go out
        after the next successful connect. Raises BufferFull (nothing was taken)
        when the buffer has no room within `timeout`.
        """
        if self._closed:
            raise ClientError("the client is closed")
        if not data:
            return
        if not data.endswith(b"\n"):
            raise ValueError("data must end with a newline: acks count whole lines")
        lines = data.count(b"\n")
        if self.ack:
            self._make_room(lines)
            self._pending.append((data, lines))
            self._pending_lines += lines
        if self._sock is None:
            self._connect()  # sends everything pending, this data included
            return
        self._send(data)
        if self.ack and self._sock is not None:
            self._read_replies(wait=0.0)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every line is confirmed; False if `timeout` passed first."""
        return self._wait_for_acks(0, self.timeout if timeout is None else timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Flush (ack mode), then close. True if every line was confirmed."""
        if self._closed:
            return self._pending_lines == 0
        if self.ack:
            # Half-close: the server releases a held last event at once and closes
            # after the last ack, instead of waiting for its idle flush.
            self._closing = True
            self._half_close()
        done = self.flush(timeout) if self.ack else True
        self._closed = True
        self._drop_connection()
        return done

    def __enter__(self) -> LogCasterClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- connection --------------------------------------------------------------

    def _connect(self) -> bool:
        """Connect (if the backoff allows), handshake, resend what is unconfirmed."""
        if time.monotonic() < self._next_try:
            return False
        try:
            sock = socket.create_connection(self._address, timeout=self.connect_timeout)
        except OSError:
            self._backoff()
            return False
        sock.settimeout(self.timeout)
        self._sock = sock
        self._replies = b""
        self._conn_acked = 0
        try:
            if self.ack:
                sock.sendall(ACK_HANDSHAKE)
                reply = self._read_line()
                if reply != ACK_ACCEPTED:
                    raise ClientError(f"no ack handshake from {self._address}: {reply[:64]!r}")
                if self._pending:
                    sock.sendall(b"".join([chunk for chunk, _ in self._pending]))
                if self._closing:
                    self._half_close()
        except OSError:
            self._drop_connection()
            self._backoff()
            return False
        except ClientError:
            self._drop_connection()
            raise
        self.connects += 1
        self._delay = BACKOFF_START
        return True

    def _half_close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_WR)

    def _backoff(self) -> None:
        self._next_try = time.monotonic() + self._delay * (0.5 + self._jitter.random())
        self._delay = min(self._delay * 2, BACKOFF_MAX)

    def _drop_connection(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _broken(self) -> None:
        self._drop_connection()
        self._backoff()

    def _send(self, data: bytes) -> None:
        assert self._sock is not None
        try:
            self._sock.sendall(data)
        except OSError:
            # What the server read of it is unknown: the lines stay pending and go
            # out again after the reconnect.
            self._broken()

    # -- acks --------------------------------------------------------------------

    def _make_room(self, lines: int) -> None:
        if not self._wait_for_acks(max(0, self.max_pending_lines - lines), self.timeout):
            raise BufferFull(f"{self._pending_lines} lines wait for acks")

    def _wait_for_acks(self, pending_at_most: int, timeout: float) -> bool:
        """Read acks (reconnecting as the backoff allows) until at most that many
        lines are unconfirmed; False if `timeout` passed first."""
        deadline = time.monotonic() + timeout
        while self._pending_lines > pending_at_most:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self._sock is None:
                if not self._connect():
                    time.sleep(min(left, max(0.0, self._next_try - time.monotonic()), 0.5))
                continue
            self._read_replies(wait=min(left, 0.5))
        return True

    def _read_line(self) -> bytes:
        """One reply line, blocking up to the socket timeout (the handshake)."""
        assert self._sock is not None
        while b"\n" not in self._replies:
            chunk = self._sock.recv(4096)
            if not chunk:
                raise ConnectionResetError("the server closed the connection")
            self._replies += chunk
            if len(self._replies) > MAX_REPLY_LINE and b"\n" not in self._replies:
                break
        line, _, self._replies = self._replies.partition(b"\n")
        return line + b"\n"

    def _read_replies(self, wait: float) -> None:
        """Take the acks that have arrived, waiting up to `wait` seconds for the first."""
        sock = self._sock
        assert sock is not None
        try:
            sock.settimeout(wait if wait > 0 else 0.0)
            try:
                chunk = sock.recv(65536)
            finally:
                sock.settimeout(self.timeout)
        except (BlockingIOError, TimeoutError):
            return
        except OSError:
            self._broken()
            return
        if not chunk:
            self._broken()
            return
        data = self._replies + chunk
        end = data.rfind(b"\n") + 1
        self._replies = data[end:]
        for line in data[:end].splitlines():
            if line.startswith(b"NACK "):
                # The server is overloaded (queue policy reject): it took the first
                # n lines; the rest go again on a new connection after the backoff.
                self._confirm(int(line[5:]))
                self.rejections += 1
                self._broken()
                return
            if not line.startswith(b"ACK "):
                raise ClientError(f"unexpected reply from the server: {line[:64]!r}")
            self._confirm(int(line[4:]))

    def _confirm(self, count: int) -> None:
        """`ACK count`: the first `count` lines of this connection are durable."""
        newly = count - self._conn_acked
        if newly <= 0:
            return
        self._conn_acked = count
        self.acked += newly
        self._pending_lines -= newly
        pending = self._pending
        while newly:
            chunk, lines = pending[0]
            if lines <= newly:
                pending.popleft()
                newly -= lines
            else:
                # Part of a chunk: keep the lines after the `newly`-th newline.
                cut = -1
                for _ in range(newly):
                    cut = chunk.index(b"\n", cut + 1)
                pending[0] = (chunk[cut + 1 :], lines - newly)
                newly = 0


class LogCasterHandler(logging.Handler):
    """A `logging` handler that ships formatted records through a `LogCasterClient`.

    Each record becomes one line (a traceback's newlines make it several lines,
    which the server's multi-line grouping joins again). `close()` waits up to
    `flush_timeout` for the last acks.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        flush_timeout: float = 5.0,
        max_pending_lines: int = 200_000,
        timeout: float = 30.0,
    ) -> None:
        super().__init__()
        self.client = LogCasterClient(
            host, port, max_pending_lines=max_pending_lines, timeout=timeout
        )
        self.flush_timeout = flush_timeout

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.client.send(self.format(record).encode("utf-8", "replace") + b"\n")
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        with self.lock if self.lock is not None else contextlib.nullcontext():
            self.client.flush(self.flush_timeout)

    def close(self) -> None:
        with self.lock if self.lock is not None else contextlib.nullcontext():
            self.client.close(self.flush_timeout)
        super().close()
