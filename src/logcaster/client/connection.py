"""`LogCasterClient`: one connection to LogCaster's TCP ingest, acks optional.

    with LogCasterClient("127.0.0.1", 9999) as client:
        client.send(b"first line\\nsecond line\\n")
    # leaving the block raises DeliveryError if a line is still unconfirmed

The protocol is in docs/acknowledged-delivery.md: after the handshake
`#LOGCASTER ACK 1`, the server confirms lines with `ACK <n>`, `n` counting the
lines of this connection that are durable. The client keeps every line until
it is confirmed (with acks: by the server; without: once the socket took it).
When the connection breaks it reconnects (exponential backoff with jitter) and
sends the unconfirmed lines again, so delivery is at-least-once. `NACK <n>`
(the server's queue policy `reject`) is handled the same way.

Each client names its stream in the handshake (`SESSION <id> SEQ <n>`, a
random id per client object, `n` the number of its first unconfirmed line):
a LogCaster that publishes to scale-out's writers then stores a resent line
once, whichever server took it first. `session=False` leaves the name out.

`ack`: True requires the handshake; False sends plain lines; None (the
default) asks and uses acks when the server answers `#OK ACK 1`. A peer that
stays silent is taken for a plain line receiver (plain mode on that
connection) unless it has confirmed acks before, or a silent peer stopped
reading for a whole send timeout: then silence means a hung server, and the
lines wait. (What a hung peer's socket buffers took in plain mode is lost, a
TCP limit, once.) Any other answer means the port is not a LogCaster ingest
port: the connection is dropped and retried later, never written to.

`tls=True` (or a CA, certificate or key file) connects with TLS, verifying the
server against `ca_file` (else the system's CAs) and its name; `tls=` an
`ssl.SSLContext` uses that. TLS cannot half-close, so `close()` waits for the
server's idle flush (multiline.idle_timeout) to ack a last held line.

`token`: sent first on every connection (`#LOGCASTER AUTH <token>`, for a server
with auth.enabled; docs/security.md); a refused token fails the connection,
retried with backoff like any other failure (`last_error` says why).

No call blocks past its timeout: connects, the handshake, sends and ack reads
all run in slices of `SLICE` seconds, and none runs past `stop_at` (a
monotonic time another thread may set to cut a shutdown short). Failures never
raise from `send`: they are kept in `last_error` (address and reason), the
lines wait in the bounded buffer, and `close()` (or leaving a `with` block)
reports what stayed unconfirmed. Not thread-safe: one owner thread.
"""

from __future__ import annotations

import contextlib
import math
import random
import socket
import ssl
import time
import uuid
from collections import deque
from types import TracebackType

from logcaster import exceptions
from logcaster.client.dial import SLICE
from logcaster.client.dial import Failed as _Failed
from logcaster.client.dial import connect as _connect
from logcaster.client.dial import reason as _reason
from logcaster.client.dial import tls_handshake as _handshake
from logcaster.security.tls_client import wanted

ACK_HANDSHAKE = b"#LOGCASTER ACK 1\n"
AUTH_ACCEPTED = b"#OK AUTH\n"
ACK_ACCEPTED = b"#OK ACK 1\n"
BACKOFF_START = 0.05
BACKOFF_MAX = 5.0
MAX_REPLY_LINE = 64  # "ACK <20 digits>\n" and the handshake reply are shorter


class LogCasterError(exceptions.LogCasterError):
    """A LogCaster client failure; `address` and `reason` say where and why.

    A subclass of the package's base error, so `except logcaster.LogCasterError`
    catches client failures too."""

    def __init__(self, address: tuple[str, int], reason: str) -> None:
        super().__init__(f"logcaster {address[0]}:{address[1]}: {reason}")
        self.address = address
        self.reason = reason


ClientError = LogCasterError  # the name before issue 14


class BufferFull(LogCasterError):
    """`max_pending_lines` unconfirmed lines are waiting and no ack made room in time."""


class DeliveryError(LogCasterError):
    """`close()` (leaving a `with` block) found lines that were never confirmed."""


class _Stalled(_Failed):
    """The peer took no data for the whole send timeout."""


class LogCasterClient:
    """Sends newline-terminated lines to one LogCaster ingest port; see the module doc."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ack: bool | None = None,
        max_pending_lines: int = 200_000,
        timeout: float = 5.0,
        connect_timeout: float = 1.0,
        handshake_timeout: float = 1.0,
        tls: bool | ssl.SSLContext = False,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        token: str | None = None,
        session: bool = True,
    ) -> None:
        if max_pending_lines < 1:
            raise ValueError("max_pending_lines must be >= 1")
        self._address = (host, port)
        self._ssl = wanted(tls, ca_file, cert_file, key_file)
        self._token = token
        self.ack = ack
        self.max_pending_lines = max_pending_lines
        self.timeout = timeout  # send: wait for room; flush and close: their default
        self.connect_timeout = connect_timeout
        self.handshake_timeout = handshake_timeout
        self.stop_at = math.inf  # no network operation runs past this monotonic time
        self.acked = 0  # lines confirmed, over all connections
        # The stream's name in the ack handshake, so that lines resent after a
        # broken connection are stored once, by whichever server took them first
        # (scale-out: docs/scaleout.md). Lines are numbered from 0 over the
        # client's life; `_lines_done` is the number of the first pending one.
        self.session = uuid.uuid4().hex if session else None
        self._lines_done = 0  # lines confirmed or given up (take_pending)
        self.rejections = 0  # NACKs: the server refused lines (queue policy reject)
        self.connects = 0
        self.last_error: str | None = None  # why the last attempt or connection failed
        self.acking = False  # this connection confirms lines with acks
        # Silence on the handshake is a fault, not a plain receiver, once the peer
        # answered it before or a silent peer stopped reading (a hung server would
        # otherwise swallow a socket buffer of lines on every reconnect).
        self._silence_fails = False
        self._sock: socket.socket | None = None
        self._pending: deque[tuple[bytes, int]] = deque()  # unconfirmed chunks and their lines
        self._pending_lines = 0
        self._unwritten = 0  # pending lines not written to this connection yet (plain mode)
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
        when the buffer has no room: at once while the server is unreachable,
        after up to `timeout` of waiting for acks while it is connected.
        """
        if self._closed:
            raise LogCasterError(self._address, "the client is closed")
        if not isinstance(data, bytes | bytearray):
            raise TypeError(f"send() takes bytes, not {type(data).__name__}: encode it first")
        if not data:
            return
        if not data.endswith(b"\n"):
            raise ValueError("data must end with a newline: acks count whole lines")
        lines = data.count(b"\n")
        self._make_room(lines)
        self._pending.append((data, lines))
        self._pending_lines += lines
        if self._sock is None:
            self.connect()  # sends everything pending, this data included
            return
        self._unwritten += lines
        try:
            self._write_unwritten()
        except _Failed as exc:
            # What the server read of it is unknown: the lines stay pending and go
            # out again after the reconnect.
            self._broken(str(exc))
            return
        if self.acking and self._sock is not None:
            self._read_replies(wait=0.0)

    def connect(self) -> bool:
        """Connect now if not connected and the backoff allows; True if connected."""
        if self._sock is not None:
            return True
        if time.monotonic() < self._next_try:
            return False
        try:
            self._open()
        except _Failed as exc:
            self._drop_connection()
            self._backoff(str(exc))
            return False
        self.connects += 1
        self._delay = BACKOFF_START
        self.last_error = None
        return True

    def poll(self, wait: float = 0.0) -> None:
        """Take the acks that arrived (waiting up to `wait` for one); connect if due."""
        if self._sock is None:
            self.connect()
        elif self.acking and self._pending_lines:
            self._read_replies(wait)

    def take_pending(self) -> bytes:
        """Give up the unconfirmed lines (oldest first) and the connection they were on."""
        self._drop_connection()
        data = b"".join([chunk for chunk, _ in self._pending])
        self._pending.clear()
        self._lines_done += self._pending_lines
        self._pending_lines = 0
        return data

    def half_close(self) -> None:
        """End the stream: the server releases a held last event and acks it at once."""
        self._closing = True
        if self._sock is not None and self._ssl is None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_WR)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every line is confirmed; False if `timeout` passed first."""
        return self._wait_for_acks(0, self.timeout if timeout is None else timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Flush, then close. True if every line was confirmed (see `last_error` if not)."""
        if self._closed:
            return self._pending_lines == 0
        self.half_close()
        done = self.flush(timeout)
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
        if not self.close() and exc_type is None:
            reason = self.last_error or "no confirmation in time"
            raise DeliveryError(
                self._address, f"{self._pending_lines} lines not delivered: {reason}"
            )

    # -- connection --------------------------------------------------------------

    def _budget(self, limit: float) -> float:
        """Seconds an operation may take: `limit`, cut short by `stop_at`."""
        return min(limit, self.stop_at - time.monotonic())

    def _open(self) -> None:
        """Connect, handshake, write what is unconfirmed; _Failed with the reason."""
        self._sock = _connect(self._address, self.connect_timeout, self._budget)
        if self._ssl is not None:
            self._sock = _handshake(
                self._sock, self._ssl, self._address[0], self._budget(self.connect_timeout)
            )
        self._replies = b""
        self._conn_acked = 0
        self.acking = False
        if self._token is not None:
            self._write(b"#LOGCASTER AUTH %s\n" % self._token.encode())
            reply = self._handshake_reply()
            if reply != AUTH_ACCEPTED:
                said = "no answer" if reply is None else f"it answered {reply[:40]!r}"
                raise _Failed(f"the server did not accept the token ({said})")
        if self.ack is not False:
            if self.session is None:
                self._write(ACK_HANDSHAKE)
            else:
                self._write(
                    b"%s SESSION %s SEQ %d\n"
                    % (ACK_HANDSHAKE[:-1], self.session.encode(), self._lines_done)
                )
            reply = self._handshake_reply()
            if reply == ACK_ACCEPTED:
                self.acking = self._silence_fails = True
            elif reply is not None:
                raise _Failed(f"not a LogCaster ingest port (it answered {reply[:40]!r})")
            elif self.ack or self._silence_fails:
                raise _Failed(f"no answer to the ack handshake in {self.handshake_timeout} s")
            # Silence from a peer never seen acking: a plain line receiver.
        self._unwritten = self._pending_lines
        self._write_unwritten()
        if self._closing:
            self.half_close()

    def _handshake_reply(self) -> bytes | None:
        """The first reply line; None if the peer stayed silent for `handshake_timeout`."""
        assert self._sock is not None
        deadline = time.monotonic() + self.handshake_timeout
        while b"\n" not in self._replies and len(self._replies) <= MAX_REPLY_LINE:
            left = self._budget(deadline - time.monotonic())
            if left <= 0:
                return None if not self._replies else self._replies
            self._sock.settimeout(min(left, SLICE))
            try:
                chunk = self._sock.recv(4096)
            except (TimeoutError, ssl.SSLWantReadError):
                continue
            except OSError as exc:
                raise _Failed(f"handshake: {_reason(exc)}") from exc
            if not chunk:
                raise _Failed("the peer closed the connection during the handshake")
            self._replies += chunk
        line, _, self._replies = self._replies.partition(b"\n")
        return line + b"\n"

    def _write_unwritten(self) -> None:
        """Write the pending lines this connection has not had yet (the newest ones);
        _Failed if the connection broke."""
        if not self._unwritten:
            return
        chunks: list[bytes] = []
        lines = 0
        for chunk, n in reversed(self._pending):
            chunks.append(chunk)
            lines += n
            if lines >= self._unwritten:
                break
        try:
            self._write(b"".join(reversed(chunks)))
        except _Stalled:
            if not self.acking and self.ack is None:
                self._silence_fails = True
            raise
        written, self._unwritten = self._unwritten, 0
        if not self.acking:
            self._release(written)  # plain: confirmed once the socket took them

    def _write(self, data: bytes) -> None:
        """sendall in slices, so that `timeout` and `stop_at` hold."""
        assert self._sock is not None
        deadline = time.monotonic() + self.timeout
        view = memoryview(data)
        while view:
            left = self._budget(deadline - time.monotonic())
            if left <= 0:
                raise _Stalled(f"send timed out after {self.timeout} s: the peer takes no data")
            self._sock.settimeout(min(left, SLICE))
            try:
                view = view[self._sock.send(view) :]
            except TimeoutError:
                continue
            except OSError as exc:
                raise _Failed(f"send: {_reason(exc)}") from exc

    def _backoff(self, reason: str) -> None:
        self.last_error = reason
        self._next_try = time.monotonic() + self._delay * (0.5 + self._jitter.random())
        self._delay = min(self._delay * 2, BACKOFF_MAX)

    def _drop_connection(self) -> None:
        sock, self._sock = self._sock, None
        self.acking = False
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _broken(self, reason: str) -> None:
        self._drop_connection()
        self._backoff(reason)

    # -- acks --------------------------------------------------------------------

    def _make_room(self, lines: int) -> None:
        if self._pending_lines + lines <= self.max_pending_lines:
            return
        # Connected: acks make room. Unreachable: waiting would only stall the caller.
        connected = self._sock is not None or self.connect()
        if connected and self._wait_for_acks(max(0, self.max_pending_lines - lines), self.timeout):
            return
        reason = self.last_error or "no acks in time"
        raise BufferFull(self._address, f"{self._pending_lines} lines wait for acks ({reason})")

    def _wait_for_acks(self, pending_at_most: int, timeout: float) -> bool:
        """Read acks (reconnecting as the backoff allows) until at most that many
        lines are unconfirmed; False if `timeout` (or `stop_at`) passed first."""
        deadline = time.monotonic() + timeout
        while self._pending_lines > pending_at_most:
            left = self._budget(deadline - time.monotonic())
            if left <= 0:
                return False
            if self._sock is None:
                if not self.connect():
                    time.sleep(min(left, max(0.0, self._next_try - time.monotonic()), SLICE))
                continue
            self._read_replies(wait=min(left, SLICE))
        return True

    def _read_replies(self, wait: float) -> None:
        """Take the acks that have arrived, waiting up to `wait` seconds for the first."""
        sock = self._sock
        assert sock is not None
        try:
            sock.settimeout(max(0.0, self._budget(wait)))
            chunk = sock.recv(65536)
        except (BlockingIOError, TimeoutError, ssl.SSLWantReadError):
            return
        except OSError as exc:
            self._broken(f"receive: {_reason(exc)}")
            return
        if not chunk:
            self._broken("the server closed the connection")
            return
        data = self._replies + chunk
        end = data.rfind(b"\n") + 1
        self._replies = data[end:]
        if len(self._replies) > MAX_REPLY_LINE:
            self._broken(f"unexpected reply from the server: {self._replies[:64]!r}")
            return
        for line in data[:end].splitlines():
            if line.startswith(b"NACK ") and line[5:].isdigit():
                # The server is overloaded (queue policy reject): it took the first
                # n lines; the rest go again on a new connection after the backoff.
                self._on_ack(int(line[5:]))
                self.rejections += 1
                self._broken("the server refused lines (NACK: its queue is full)")
                return
            if not (line.startswith(b"ACK ") and line[4:].isdigit()):
                self._broken(f"unexpected reply from the server: {line[:64]!r}")
                return
            self._on_ack(int(line[4:]))

    def _on_ack(self, count: int) -> None:
        """`ACK count`: the first `count` lines of this connection are durable."""
        newly = count - self._conn_acked
        if newly > 0:
            self._conn_acked = count
            self._release(newly)

    def _release(self, newly: int) -> None:
        """The oldest `newly` pending lines are confirmed: forget them."""
        newly = min(newly, self._pending_lines)
        self.acked += newly
        self._lines_done += newly
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
