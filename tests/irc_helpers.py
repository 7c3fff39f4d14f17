"""What the IRC protocol tests share: a bare-socket IRC client, for what no client
library does on purpose (never answering PING, never reading, sending an
over-long line, looking at the exact bytes), an ingest flood, and /metrics.

The client libraries under test (jaraco's `irc`, `pydle`) live in the test files.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType

from tests.metrics_helpers import metrics_text, samples, value

HOST = "127.0.0.1"
MAX_LINE = 512  # bytes with CR LF (RFC 1459 §2.3, RFC 2812 §2.3)


class RawIrc:
    """One TCP connection speaking IRC by hand. Every line received is kept with
    its line ending (`frames`), so a test can measure it; reads wait with deadlines."""

    def __init__(self, port: int, *, rcvbuf: int | None = None, timeout: float = 10.0) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # before connect: the window the server sees is small
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            # ...and its segments too: loopback's 64 KiB MSS lets the server's send
            # buffer grow to megabytes before a client that does not read blocks it.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
        sock.settimeout(timeout)
        sock.connect((HOST, port))
        self.sock = sock
        self.frames: list[bytes] = []  # every line received, CR LF included
        self.eof = False
        self.pong = True  # answer the server's PINGs while reading
        self._buffer = b""
        self._read = 0  # frames already looked at by `expect`

    def send(self, *lines: str | bytes) -> None:
        data = b"".join((x.encode() if isinstance(x, str) else x) + b"\r\n" for x in lines)
        self.sock.sendall(data)

    def lines(self) -> list[str]:
        return [f.rstrip(b"\r\n").decode("utf-8", "replace") for f in self.frames]

    def _receive(self, wait: float) -> bool:
        """Read once (at most `wait` s); False on timeout or EOF."""
        if self.eof:
            return False
        self.sock.settimeout(max(wait, 0.001))
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return False
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self._buffer += data
        while (end := self._buffer.find(b"\n")) >= 0:
            frame, self._buffer = self._buffer[: end + 1], self._buffer[end + 1 :]
            self.frames.append(frame)
            if self.pong and frame.startswith(b"PING "):
                self.sock.sendall(b"PONG " + frame[5:].rstrip(b"\r\n") + b"\r\n")
        return True

    def expect(self, match: Callable[[str], bool], what: str, timeout: float = 10.0) -> str:
        """The first line not yet looked at that `match`es, reading until it comes."""
        deadline = time.monotonic() + timeout
        while True:
            texts = self.lines()
            for i in range(self._read, len(texts)):
                if match(texts[i]):
                    self._read = i + 1
                    return texts[i]
            self._read = len(texts)
            left = deadline - time.monotonic()
            if left <= 0 or self.eof:
                raise TimeoutError(f"no line {what}; got {texts[-20:]!r} (eof={self.eof})")
            self._receive(min(left, 0.5))

    def expect_command(self, command: str, timeout: float = 10.0) -> str:
        return self.expect(lambda line: command_of(line) == command, command, timeout)

    def read_until_eof(self, timeout: float = 10.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"the server never closed; last lines {self.lines()[-10:]!r}")
            self._receive(min(left, 0.5))
        return self.lines()

    def register(self, nick: str, timeout: float = 10.0) -> None:
        self.send(f"NICK {nick}", f"USER {nick} 0 * :{nick} raw")
        self.expect(lambda line: command_of(line) in ("376", "422"), "end of MOTD", timeout)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawIrc:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def command_of(line: str) -> str:
    """The command (or numeric) of a raw IRC line."""
    words = line.split(" ")
    if words and words[0].startswith("@"):
        words = words[1:]
    if words and words[0].startswith(":"):
        words = words[1:]
    return words[0] if words else ""


class Flood:
    """Lines sent to TCP ingest from a thread, `batch` lines every `pause` s, until
    stopped: a high event rate for a while. `make(i)` gives line `i` (no newline)."""

    def __init__(
        self,
        port: int,
        make: Callable[[int], str],
        *,
        batch: int = 100,
        pause: float = 0.02,
        first: bytes = b"",
    ) -> None:
        self.port = port
        self.make = make
        self.batch = batch
        self.pause = pause
        self.first = first  # sent once at the start: an AUTH line
        self.sent = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            with socket.create_connection((HOST, self.port), timeout=10) as sock:
                if self.first:
                    sock.sendall(self.first)
                while not self._stop.is_set():
                    start = self.sent
                    lines = [self.make(i) + "\n" for i in range(start, start + self.batch)]
                    sock.sendall("".join(lines).encode())
                    self.sent += self.batch
                    self._stop.wait(self.pause)
        except BaseException as exc:  # reported by stop()
            self.error = exc

    def start(self) -> Flood:
        self._thread.start()
        return self

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(15)
        if self.error is not None:
            raise self.error
        return self.sent

    def __enter__(self) -> Flood:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(15)


def irc_metric(http_port: int, name: str, **labels: str) -> float:
    """A sample (summed over the other labels) of the server's /metrics."""
    return value(samples(metrics_text(http_port)), name, **labels)
