"""Where events go: stdout, a file, TCP lines, syslog (UDP or TCP), or HTTP.

`--output` targets:

    -  | stdout                 standard output (the default)
    PATH | file://PATH          a file (truncated first)
    tcp://HOST:PORT            newline-delimited lines, LogCaster's TCP ingest
    tcp://HOST:PORT?ack=1      the same with acknowledged delivery: lines are kept
                               until the server confirms them and resent after a
                               reconnect (logcaster.client)
    tls://HOST:PORT[?ack=1]    the same two over TLS (the server verified: --ca-file,
                               else the system's CAs; --cert/--key for mTLS)
    syslog://HOST:PORT         RFC 5424 over UDP, one datagram per event
    syslog+tcp://HOST:PORT     RFC 5424 over TCP with RFC 6587 octet counting
                               (also syslog://HOST:PORT?proto=tcp)
    syslog+tls://HOST:PORT     the same over TLS (RFC 5425)
    http://HOST:PORT[/PATH]    batches POSTed to LogCaster's /api/v1/logs (the
                               default path), NDJSON by default; ?ack=1 answers
                               once durable (simulate/http_output.py); https://
                               verifies the server as tls:// does

A network output never ends the run: when its server goes away it drops what it
cannot send, counts it (`unsent`), and reconnects with exponential backoff and
jitter, trying again no sooner than the backoff allows so that a dead server
costs the pacer nothing. TCP cannot tell which bytes of a failed send the
server read, so a batch whose send fails is counted unsent whole; events the
kernel accepted just before the server died are lost uncounted (a TCP limit).
With `?ack=1` nothing is lost that way: an event is counted sent once the
server confirmed it durable, and unsent if it was still unconfirmed at the end
or found the client's buffer full (at once while the server is away). So a
run with --count ends in bounded time with no server: at most CLOSE_GRACE
after the last event, and the runner exits 1 when anything is unsent.
"""

from __future__ import annotations

import contextlib
import random
import socket
import ssl
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import BinaryIO, Protocol
from urllib.parse import parse_qs, urlsplit, urlunsplit

from logcaster.client import BufferFull, LogCasterClient
from logcaster.security.tls_client import client_context
from logcaster.simulate.formats import FORMATS, Stamps, syslog_message
from logcaster.simulate.generator import SimEvent
from logcaster.simulate.http_output import DEFAULT_PATH, HttpOutput

BACKOFF_START = 0.1  # seconds before the first reconnect attempt
BACKOFF_MAX = 5.0
CONNECT_TIMEOUT = 2.0
SEND_TIMEOUT = 10.0  # a server that takes no data this long is treated as gone
CLOSE_GRACE = 1.0  # ?ack=1 at the end with the server away: how long to wait for it

Notify = Callable[[str], None]


class OutputError(Exception):
    """A target that cannot be used (bad URL, file that cannot be opened)."""


class OutputClosed(Exception):
    """The reader went away for good (stdout closed by `head`): end the run quietly."""


class Output(Protocol):
    sent: int
    unsent: int

    @property
    def reconnects(self) -> int: ...

    def write(self, events: list[SimEvent]) -> None: ...

    def close(self) -> None: ...


class StreamOutput:
    """stdout or a file: one buffered write per batch."""

    def __init__(self, stream: BinaryIO, fmt: str, owned: bool) -> None:
        self._stream = stream
        self._format = FORMATS[fmt]
        self._stamps = Stamps()
        self._owned = owned
        self.sent = self.unsent = self.reconnects = 0

    def write(self, events: list[SimEvent]) -> None:
        try:
            self._stream.write(self._format(events, self._stamps))
            if not self._owned:
                self._stream.flush()  # a demo on a terminal shows each batch at once
        except BrokenPipeError as exc:
            raise OutputClosed from exc
        self.sent += len(events)

    def close(self) -> None:
        with contextlib.suppress(BrokenPipeError):
            self._stream.flush()
        if self._owned:
            self._stream.close()


class _Connection:
    """A socket that reconnects with exponential backoff and jitter."""

    def __init__(self, target: str, connect: Callable[[], socket.socket], notify: Notify) -> None:
        self._target = target
        self._connect = connect
        self._notify = notify
        self._sock: socket.socket | None = None
        self._delay = BACKOFF_START
        self._next_try = 0.0
        self._ever_connected = False
        self._down_reported = False
        # Jitter only: independent of the seeded generator, whose output it must not change.
        self._jitter = random.Random()
        self.reconnects = 0

    def socket(self) -> socket.socket | None:
        """The connected socket, or None while the server is unreachable."""
        if self._sock is not None:
            return self._sock
        now = time.monotonic()
        if now < self._next_try:
            return None
        try:
            sock = self._connect()
        except OSError as exc:
            self.failed(exc)
            return None
        sock.settimeout(SEND_TIMEOUT)
        if self._ever_connected:
            self.reconnects += 1
            self._notify(f"simulate: reconnected to {self._target}")
        self._ever_connected = True
        self._down_reported = False
        self._delay = BACKOFF_START
        self._sock = sock
        return sock

    def send_all(self, data: bytes) -> bool:
        """Send `data` whole; False (and a reconnect later) if there is no server."""
        sock = self.socket()
        if sock is None:
            return False
        try:
            sock.sendall(data)
        except OSError as exc:
            self.failed(exc)
            return False
        return True

    def failed(self, exc: OSError) -> None:
        """The connection broke (or could not be made): back off before the next try."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        wait = self._delay * (0.5 + self._jitter.random())
        self._next_try = time.monotonic() + wait
        self._delay = min(self._delay * 2, BACKOFF_MAX)
        if not self._down_reported:
            self._down_reported = True  # once per outage, not once per attempt
            reason = exc.strerror or type(exc).__name__
            self._notify(f"simulate: {self._target} unreachable ({reason}); retrying with backoff")

    def close(self) -> None:
        if self._sock is not None:
            # Half-close first: the server sees the end of the stream and
            # releases the last (possibly multi-line) event at once. TLS has no
            # half-close: its close_notify ends the stream the same way.
            with contextlib.suppress(OSError, ValueError):
                if isinstance(self._sock, ssl.SSLSocket):
                    self._sock.settimeout(CONNECT_TIMEOUT)
                    self._sock.unwrap()
                else:
                    self._sock.shutdown(socket.SHUT_WR)
            self._sock.close()
            self._sock = None


def _dial(host: str, port: int, tls: ssl.SSLContext | None) -> socket.socket:
    """A connected socket; with `tls`, after a verified handshake."""
    sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
    if tls is None:
        return sock
    try:
        return tls.wrap_socket(sock, server_hostname=host)
    except BaseException:
        sock.close()
        raise


class TcpLinesOutput:
    """Newline-delimited events over one TCP connection."""

    def __init__(
        self, host: str, port: int, fmt: str, notify: Notify, tls: ssl.SSLContext | None = None
    ) -> None:
        self._format = FORMATS[fmt]
        self._stamps = Stamps()
        self._conn = _Connection(
            f"{'tls' if tls else 'tcp'}://{host}:{port}", lambda: _dial(host, port, tls), notify
        )
        self.sent = self.unsent = 0

    @property
    def reconnects(self) -> int:
        return self._conn.reconnects

    def write(self, events: list[SimEvent]) -> None:
        # Formatted even when no server is there: the simulated stream (and its
        # clock) must not depend on the network.
        data = self._format(events, self._stamps)
        sent = self._conn.send_all(data)
        self.sent += len(events) if sent else 0
        self.unsent += 0 if sent else len(events)

    def close(self) -> None:
        self._conn.close()


class AckedTcpOutput:
    """TCP lines with acknowledged delivery, through `LogCasterClient`.

    `sent` counts events whose lines the server confirmed; the events of each
    write are remembered by their last line number until then (bounded by the
    client's buffer).
    """

    def __init__(
        self, host: str, port: int, fmt: str, notify: Notify, tls: ssl.SSLContext | None = None
    ) -> None:
        self._format = FORMATS[fmt]
        self._stamps = Stamps()
        self._target = f"{'tls' if tls else 'tcp'}://{host}:{port}?ack=1"
        self._notify = notify
        self._client = LogCasterClient(
            host, port, ack=True, timeout=SEND_TIMEOUT, tls=tls if tls is not None else False
        )
        self._waiting: deque[tuple[int, int]] = deque()  # (last line number, events)
        self._was_connected = False
        self.sent = self.unsent = 0

    @property
    def reconnects(self) -> int:
        return max(0, self._client.connects - 1)

    def write(self, events: list[SimEvent]) -> None:
        data = self._format(events, self._stamps)
        try:
            self._client.send(data)
        except BufferFull:
            self.unsent += len(events)
            return
        # Lines leave the client only as acked (ack=True): acked + pending = handed over.
        self._waiting.append((self._client.acked + self._client.pending_lines, len(events)))
        self._settle()
        connected = self._client.connected
        if connected != self._was_connected:
            self._was_connected = connected
            state = "connected to" if connected else "lost"
            self._notify(f"simulate: {state} {self._target}")

    def _settle(self) -> None:
        """Count the events whose lines are all confirmed as sent."""
        acked = self._client.acked
        waiting = self._waiting
        while waiting and waiting[0][0] <= acked:
            self.sent += waiting.popleft()[1]

    def close(self) -> None:
        # Connected: wait for the last acks. Away: a short grace for a restarting
        # server, not the full timeout, so a run with no server ends promptly.
        client = self._client
        client.close(timeout=SEND_TIMEOUT if client.connected else CLOSE_GRACE)
        self._settle()
        self.unsent += sum(n for _, n in self._waiting)
        self._waiting.clear()
        if self.unsent and client.last_error:
            self._notify(f"simulate: {self._target}: {client.last_error}")


class SyslogOutput:
    """RFC 5424 messages; over TCP octet-counted, so a multi-line trace is one message."""

    def __init__(
        self,
        host: str,
        port: int,
        tcp: bool,
        fmt: str,
        notify: Notify,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._fmt = fmt
        self._stamps = Stamps()
        self._tcp = tcp = tcp or tls is not None
        scheme = "syslog+tls" if tls else "syslog+tcp" if tcp else "syslog"

        def connect() -> socket.socket:
            if tcp:
                return _dial(host, port, tls)
            # A connected UDP socket reports ICMP port-unreachable as an error on a
            # later send: the only sign UDP gives that nobody is listening.
            family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
            sock = socket.socket(family, kind, proto)
            sock.connect(addr)
            return sock

        self._conn = _Connection(f"{scheme}://{host}:{port}", connect, notify)
        self.sent = self.unsent = 0

    @property
    def reconnects(self) -> int:
        return self._conn.reconnects

    def write(self, events: list[SimEvent]) -> None:
        stamps, fmt = self._stamps, self._fmt
        messages = [syslog_message(ev, stamps, fmt) for ev in events]
        if self._tcp:
            sent = self._conn.send_all(b"".join([b"%d %s" % (len(m), m) for m in messages]))
            self.sent += len(events) if sent else 0
            self.unsent += 0 if sent else len(events)
            return
        sock = self._conn.socket()
        if sock is None:
            self.unsent += len(events)
            return
        for i, message in enumerate(messages):
            try:
                sock.send(message)
            except OSError as exc:
                self._conn.failed(exc)
                self.unsent += len(messages) - i
                return
            self.sent += 1

    def close(self) -> None:
        self._conn.close()


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError as exc:
        raise OutputError(f"{url}: {exc}") from exc
    if not parts.hostname or port is None:
        raise OutputError(f"{url}: expected {parts.scheme}://HOST:PORT")
    return parts.hostname, port


def _http_url(target: str) -> str:
    """The URL to POST to: the path defaults to /api/v1/logs; `ack` is checked."""
    parts = urlsplit(target)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number or out of range
    except ValueError as exc:
        raise OutputError(f"{target}: {exc}") from exc
    if not parts.hostname:
        raise OutputError(f"{target}: expected {parts.scheme}://HOST[:PORT][/PATH]")
    ack = parse_qs(parts.query).get("ack", ["0"])[0].lower()
    if ack not in ("0", "1", "false", "true"):
        raise OutputError(f"{target}: ack must be 0 or 1, not {ack!r}")
    path = parts.path if parts.path not in ("", "/") else DEFAULT_PATH
    return urlunsplit((parts.scheme.lower(), parts.netloc, path, parts.query, ""))


def default_format(target: str) -> str:
    """The --format an output gets when none is given: JSON (NDJSON) for HTTP."""
    scheme = target.split("://", 1)[0].lower() if "://" in target else ""
    return "json" if scheme in ("http", "https") else "text"


def open_output(
    target: str,
    fmt: str,
    notify: Notify,
    ca_file: str | None = None,
    cert_file: str | None = None,
    key_file: str | None = None,
) -> Output:
    """The output for an `--output` target; OutputError if it cannot be used.

    `ca_file`, `cert_file`, `key_file`: for tls://, syslog+tls:// and https://."""
    if target in ("-", "stdout"):
        return StreamOutput(sys.stdout.buffer, fmt, owned=False)
    scheme = target.split("://", 1)[0].lower() if "://" in target else ""
    tls: ssl.SSLContext | None = None
    if scheme in ("tls", "syslog+tls", "https"):
        try:
            tls = client_context(ca_file=ca_file, cert_file=cert_file, key_file=key_file)
        except (OSError, ValueError) as exc:
            raise OutputError(f"TLS: {exc}") from exc
    if scheme in ("tcp", "tls"):
        query = parse_qs(urlsplit(target).query)
        ack = query.get("ack", ["0"])[0].lower()
        if ack not in ("0", "1", "false", "true"):
            raise OutputError(f"{target}: ack must be 0 or 1, not {ack!r}")
        if ack in ("1", "true"):
            return AckedTcpOutput(*_host_port(target), fmt, notify, tls)
        return TcpLinesOutput(*_host_port(target), fmt, notify, tls)
    if scheme == "syslog+tls":
        return SyslogOutput(*_host_port(target), True, fmt, notify, tls)
    if scheme in ("syslog", "syslog+tcp", "syslog+udp"):
        query = parse_qs(urlsplit(target).query)
        proto = query.get("proto", ["tcp" if scheme == "syslog+tcp" else "udp"])[0].lower()
        if proto not in ("tcp", "udp"):
            raise OutputError(f"{target}: proto must be tcp or udp, not {proto!r}")
        return SyslogOutput(*_host_port(target), proto == "tcp", fmt, notify)
    if scheme in ("http", "https"):
        return HttpOutput(_http_url(target), target, fmt, notify, tls)
    if scheme not in ("", "file"):
        raise OutputError(f"{target}: unknown output scheme {scheme!r}")
    path = target[len("file://") :] if scheme == "file" else target
    try:
        stream = open(path, "wb", buffering=1024 * 1024)  # noqa: SIM115 - closed by close()
    except OSError as exc:
        raise OutputError(f"cannot open {path}: {exc.strerror}") from exc
    return StreamOutput(stream, fmt, owned=True)
