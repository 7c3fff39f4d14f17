"""bench/irc's IRC clients: a pool of raw-socket clients in #logs-all.

`IrcClients` opens `n` plain sockets to the server's IRC port: each registers
(NICK, USER) and joins #logs-all, and waits for the end of its NAMES list.
From `start()` on, one thread of this process reads every reading client,
counting the lines it read (and of those, LogBot's PRIVMSGs to the channel)
and answering PING; the last `stalled` clients are never read again, and
`unread_bytes()` tells what waits in their sockets (FIONREAD). `close()`
closes them all.
"""

from __future__ import annotations

import contextlib
import fcntl
import re
import selectors
import socket
import struct
import termios
import threading
import time
from collections.abc import Callable

from _common import BenchError

CHANNEL = "#logs-all"
JOIN_TIMEOUT_S = 30.0  # for every client to be registered and in the channel

_PING = re.compile(rb"^PING( .*?)\r?$", re.M)
_END_OF_NAMES = re.compile(rb"^:\S+ 366 \S+ " + re.escape(CHANNEL.encode()) + rb" .*\n", re.M)


class IrcClients:
    """`n` raw-socket IRC clients in #logs-all; the last `stalled` never read after joining."""

    def __init__(self, port: int, n: int, stalled: int, check: Callable[[], None]) -> None:
        self.socks: list[socket.socket] = []
        self.n_reading = n - stalled
        self.lines = [0] * n  # lines each client read (after joining)
        self.channel_lines = [0] * n  # of those, PRIVMSGs to the channel (LogBot's log lines)
        self.closed_by_server = 0  # reading clients the server closed
        self._rest = [b""] * n
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        try:
            for i in range(n):
                sock = socket.create_connection(("127.0.0.1", port), timeout=JOIN_TIMEOUT_S)
                self.socks.append(sock)
                sock.sendall(f"NICK bench{i}\r\nUSER bench{i} 0 * :bench/irc\r\n".encode())
                sock.sendall(f"JOIN {CHANNEL}\r\n".encode())
            deadline = time.monotonic() + JOIN_TIMEOUT_S
            for i, sock in enumerate(self.socks):
                self._rest[i] = self._joined(sock, deadline, check)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _joined(sock: socket.socket, deadline: float, check: Callable[[], None]) -> bytes:
        """Read until the channel's end of NAMES (366): what came after it."""
        buf = b""
        while True:
            names_end = _END_OF_NAMES.search(buf)
            if names_end is not None:
                return buf[names_end.end() :]
            if buf.startswith(b"ERROR ") or b"\nERROR " in buf:
                raise BenchError(f"the IRC server refused a client: {buf[-300:]!r}")
            if time.monotonic() > deadline:
                raise BenchError(f"an IRC client was not in {CHANNEL} within {JOIN_TIMEOUT_S:g} s")
            check()
            sock.settimeout(max(0.1, min(1.0, deadline - time.monotonic())))
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                raise BenchError(f"the IRC server closed a client while joining: {buf[-300:]!r}")
            buf += data

    def start(self) -> None:
        """Start reading: every reading client, on one thread."""
        self._thread = threading.Thread(target=self._read_all, daemon=True, name="irc-readers")
        self._thread.start()

    def _read_all(self) -> None:
        sel = selectors.DefaultSelector()
        try:
            for i in range(self.n_reading):
                sock = self.socks[i]
                sock.setblocking(False)
                sel.register(sock, selectors.EVENT_READ, i)
                if self._rest[i]:
                    self._take(i, b"")
            while not self._stop.is_set():
                for key, _ in sel.select(0.1):
                    i = key.data
                    sock = self.socks[i]
                    try:
                        data = sock.recv(262144)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        sel.unregister(sock)
                        self.closed_by_server += 1
                        continue
                    self._take(i, data)
        except BaseException as exc:
            self._error = exc
        finally:
            sel.close()

    def _take(self, i: int, data: bytes) -> None:
        buf = self._rest[i] + data
        cut = buf.rfind(b"\n") + 1
        whole, self._rest[i] = buf[:cut], buf[cut:]
        if not whole:
            return
        self.lines[i] += whole.count(b"\n")
        self.channel_lines[i] += whole.count(b" PRIVMSG " + CHANNEL.encode() + b" :")
        if b"PING" in whole:
            for m in _PING.finditer(whole):
                with contextlib.suppress(OSError):
                    self.socks[i].sendall(b"PONG" + m.group(1) + b"\r\n")

    def snapshot(self) -> tuple[int, int]:
        """(lines, channel lines) the reading clients have read so far, summed."""
        return sum(self.lines), sum(self.channel_lines)

    def unread_bytes(self) -> int:
        """Bytes waiting unread in the stalled clients' sockets (FIONREAD)."""
        total = 0
        for sock in self.socks[self.n_reading :]:
            with contextlib.suppress(OSError):
                raw = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
                total += struct.unpack("i", raw)[0]
        return total

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        for sock in self.socks:
            with contextlib.suppress(OSError):
                sock.close()
        self.socks = []
        if self._error is not None:
            raise BenchError(f"reading the IRC clients failed: {self._error!r}")
