"""Live-tail test helpers: an SSE parser, a tail read over a plain socket at the
test's own pace, and event lines whose filters are easy to predict."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

LEVELS = ("info", "error", "warn", "debug")
SERVICES = ("api", "db", "auth")
USERS = ("alice", "bob")


def line(i: int, pad: int = 0) -> bytes:
    """Event `i` as a logfmt line: level, service and user cycle with i."""
    level, service, user = LEVELS[i % 4], SERVICES[i % 3], USERS[i % 2]
    text = f'level={level} service={service} user={user} msg="event {i} {"x" * pad}"'
    return text.encode() + b"\n"


def lines(first: int, count: int, pad: int = 0) -> bytes:
    return b"".join(line(i, pad) for i in range(first, first + count))


@dataclass
class Message:
    """One SSE block: `event` is "" for an event's default type, "comment" for a comment."""

    event: str
    id: int | None
    data: str | None

    @property
    def doc(self) -> Any:
        assert self.data is not None
        return orjson.loads(self.data)


class SseParser:
    def __init__(self) -> None:
        self._buffer = b""
        self.messages: list[Message] = []

    def feed(self, data: bytes) -> list[Message]:
        blocks = (self._buffer + data).split(b"\n\n")
        self._buffer = blocks.pop()  # the unfinished one
        new = [_block(block.decode()) for block in blocks]
        self.messages += new
        return new


def _block(block: str) -> Message:
    event, ident, data = "", None, None
    for text in block.split("\n"):
        if text.startswith(":"):
            return Message("comment", None, text[1:].strip())
        name, _, value = text.partition(": ")
        if name == "event":
            event = value
        elif name == "id":
            ident = int(value)
        elif name == "data":
            data = value if data is None else data + "\n" + value
    return Message(event, ident, data)


def events(messages: list[Message]) -> list[dict[str, Any]]:
    return [m.doc for m in messages if m.event == "" and m.data is not None]


def skipped(messages: list[Message]) -> list[dict[str, Any]]:
    return [m.doc for m in messages if m.event == "skipped"]


def kinds(messages: list[Message], kind: str) -> list[Message]:
    return [m for m in messages if m.event == kind]


class RawTail:
    """`GET /api/v1/tail` over a plain socket, read only when the test says so.

    HTTP/1.0, so the body is the bare event stream (no chunked framing).
    `rcvbuf` shrinks the socket's receive buffer, for a reader that stalls.
    """

    def __init__(
        self,
        port: int,
        query: str = "",
        headers: dict[str, str] | None = None,
        rcvbuf: int | None = None,
    ) -> None:
        self.sock = socket.socket()
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        target = "/api/v1/tail" + (f"?{query}" if query else "")
        self.sock.sendall(f"GET {target} HTTP/1.0\r\nHost: test\r\n{extra}\r\n".encode())
        self.parser = SseParser()
        self.closed = False
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            head += chunk
        head, _, rest = head.partition(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1])
        self.headers = head.decode()
        self.body = rest  # the whole body (to EOF: HTTP/1.0) when the status is not 200
        if self.status == 200:
            self.parser.feed(rest)
            return
        while chunk := self.sock.recv(65536):
            self.body += chunk

    @property
    def messages(self) -> list[Message]:
        return self.parser.messages

    def read(self, within_s: float = 1.0) -> bool:
        """One recv; False at EOF."""
        self.sock.settimeout(within_s)
        try:
            chunk = self.sock.recv(1 << 20)
        except TimeoutError:
            return True
        if not chunk:
            self.closed = True
            return False
        self.parser.feed(chunk)
        return True

    def read_until(
        self, what: str, done: Callable[[list[Message]], bool], timeout: float = 30.0
    ) -> list[Message]:
        deadline = time.monotonic() + timeout
        while not done(self.messages):
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}; last: {self.messages[-3:]}")
            if not self.read(0.2) and not done(self.messages):
                raise AssertionError(f"EOF before {what}; last: {self.messages[-3:]}")
        return self.messages

    def read_to_eof(self, timeout: float = 30.0) -> list[Message]:
        return self.read_until("EOF", lambda _: self.closed, timeout)

    def close(self) -> None:
        self.sock.close()
