"""A client harness for the IRC tests (tests/test_irc_protocol.py, _channels, _lines,
_logbot): jaraco's `irc` library, as a real client library sees the protocol.

Each `Client` is one `irc.client.Reactor` with one connection, run in a thread;
every event the library raises is recorded with its type, as the library names
it: numerics by name from its codes table ("welcome", "nicknameinuse",
"featurelist" for 005, "channelcreate" for 329), or by number when it has none
("417"). For a numeric the library puts our nick in `target` and the rest in
`arguments`. What the library cannot do on purpose (never answer PING, send an
over-long line, show the exact bytes) is done with a bare socket
(tests/irc_helpers.py).

One server per test module (the `server` fixture), with a one-second ping
interval and timeout so the ping tests are short, and a rate high enough that
replies are not held back.
Events other tests sent reach the log channels too, so each test looks for its
own text, and only tests/test_irc_logbot.py's `test_logfilter_*` changes #logs-debug.
"""

from __future__ import annotations

import itertools
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import irc.client  # type: ignore[import-untyped]
import irc.connection  # type: ignore[import-untyped]
import orjson

from logcaster.testing import ServerProcess, start_server, wait_for

HOST = "127.0.0.1"
SERVER = "logcaster"  # irc.server_name
BOT = "LogBot"
RATE = 100
ENV = {
    "LOGCASTER_IRC__PING_INTERVAL": "1",
    "LOGCASTER_IRC__PING_TIMEOUT": "1",
    "LOGCASTER_IRC__REGISTER_TIMEOUT": "3",
    "LOGCASTER_IRC__RATE": str(RATE),
    "LOGCASTER_IRC__CHANNEL_RATE": str(RATE),
    "LOGCASTER_IRC__BURST": "200",
    "LOGCASTER_IRC__COMMANDS_PER_S": "100",
    "LOGCASTER_IRC__COMMANDS_BURST": "100",
}
# The control characters an event may carry, and how the server must show them.
CONTROLS = {
    "\x03": "\\x03",  # mIRC colour
    "\x02": "\\x02",  # bold
    "\x0f": "\\x0f",  # reset
    "\x16": "\\x16",  # reverse
    "\x1d": "\\x1d",  # italics
    "\x1f": "\\x1f",  # underline
    "\x1b": "\\x1b",  # ESC: a terminal escape
    "\x01": "\\x01",  # CTCP's delimiter
    "\x07": "\\x07",  # BEL
    "\r": "\\r",
    "\x7f": "\\x7f",
    "\u009b": "\\x9b",  # C1 CSI
}
LEVEL_COLOUR = re.compile(r"\x03\d\d(TRACE|DEBUG|INFO|WARN|ERROR|FATAL)\x03")
UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028-\u202e\u2066-\u2069]")
_tokens = itertools.count(1)


# --- the client ----------------------------------------------------------------------


@dataclass(frozen=True)
class Ev:
    """One event as jaraco's library raised it."""

    type: str
    source: str
    target: str
    args: tuple[str, ...]

    @property
    def nick(self) -> str:
        return self.source.partition("!")[0]

    @property
    def text(self) -> str:
        return self.args[-1] if self.args else ""


Match = Callable[[Ev], bool]


class Client:
    """One connection of jaraco's `irc` library, its Reactor looping in a thread.

    `first` is written on the socket before the library's own PASS/NICK/USER:
    how a test opens with `CAP LS 302`, which the library's connect() does not."""

    def __init__(
        self,
        port: int,
        nick: str,
        *,
        password: str | None = None,
        first: bytes = b"",
    ) -> None:
        self.reactor = irc.client.Reactor()
        self.events: list[Ev] = []
        self.raw: list[str] = []  # every line received, decoded, without CR LF
        self.failure: BaseException | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.reactor.add_global_handler("all_events", self._record, -100)
        factory = irc.connection.Factory()

        def connect(address: tuple[str, int]) -> Any:
            sock = factory(address)
            if first:
                sock.sendall(first)
            return sock

        self.conn = self.reactor.server()
        self.conn.connect(
            HOST,
            port,
            nick,
            password=password,
            username=nick.lower()[:10],
            ircname=f"{nick} (jaraco irc)",
            connect_factory=connect,
        )
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _record(self, connection: Any, event: Any) -> None:
        args = tuple(str(a) for a in event.arguments or ())
        with self._lock:
            if event.type == "all_raw_messages":
                self.raw.append(args[0])
                return
            source = "" if event.source is None else str(event.source)
            target = "" if event.target is None else str(event.target)
            self.events.append(Ev(str(event.type), source, target, args))

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                self.reactor.process_once(0.02)
        except BaseException as exc:  # the test sees it in expect()
            self.failure = exc

    # --- acting ---

    def do(self, method: str, *args: str) -> None:
        """Call the connection's method (join, privmsg, send_raw, ...) under the
        reactor's lock: the reactor's thread reads the same connection."""
        with self.reactor.mutex:
            getattr(self.conn, method)(*args)

    @property
    def connected(self) -> bool:
        with self.reactor.mutex:
            return bool(self.conn.is_connected())

    def close(self) -> None:
        with self.reactor.mutex:
            if self.conn.is_connected():
                self.conn.disconnect("test over")
        self._stop.set()
        self._thread.join(5)
        with self.reactor.mutex:
            self.conn.close()

    # --- looking ---

    def mark(self) -> int:
        with self._lock:
            return len(self.events)

    def seen(self, kind: str | None = None, since: int = 0, until: int | None = None) -> list[Ev]:
        with self._lock:
            found = self.events[since:until]
        return [e for e in found if kind is None or e.type == kind]

    def expect(
        self, kind: str, where: Match | None = None, since: int = 0, timeout: float = 10.0
    ) -> Ev:
        """The first event of type `kind` (matching `where`) from index `since` on."""

        def probe() -> Ev | None:
            if self.failure is not None:
                raise AssertionError(f"the client's loop failed: {self.failure!r}")
            for ev in self.seen(kind, since):
                if where is None or where(ev):
                    return ev
            return None

        try:
            found = wait_for(f"a {kind} event", probe, lambda ev: ev is not None, timeout)
        except TimeoutError:
            tail = [(e.type, e.target, e.args) for e in self.seen(since=since)][-15:]
            raise AssertionError(f"no {kind} event; last events: {tail}") from None
        assert found is not None
        return found

    def index(self, ev: Ev) -> int:
        with self._lock:
            return self.events.index(ev)

    def sync(self) -> int:
        """PING the server and wait for its PONG: every reply to what this client
        sent before is recorded by then (the server answers in order). Returns the
        PONG's index."""
        token = f"sync{next(_tokens)}"
        since = self.mark()
        self.do("ping", token)
        pong = self.expect("pong", lambda e: token in e.args, since)
        return self.index(pong)

    def said_by_bot(self, since: int = 0, target: str | None = None) -> list[str]:
        """LogBot's PRIVMSG texts (to a channel or to us) from index `since` on."""
        return [
            e.text
            for e in self.seen(since=since)
            if e.type in ("pubmsg", "privmsg")
            and e.nick == BOT
            and (target is None or e.target == target)
        ]


class Connect(Protocol):
    def __call__(
        self, nick: str, *, register: bool = True, password: str | None = None, first: bytes = b""
    ) -> Client: ...


# --- fixtures: each test module declares them over these --------------------------


def serving() -> Iterator[ServerProcess]:
    """The module's server (the `server` fixture)."""
    server = start_server("-I", "0", env={**os.environ, **ENV})
    try:
        yield server
    finally:
        server.kill()


def connecting(server: ServerProcess) -> Iterator[Connect]:
    """Connect clients (registered unless told); all closed after the test (the
    `connect` fixture)."""
    made: list[Client] = []

    def make(
        nick: str, *, register: bool = True, password: str | None = None, first: bytes = b""
    ) -> Client:
        client = Client(server.ports["irc"], nick, password=password, first=first)
        made.append(client)
        if register:
            client.expect("endofmotd")
        return client

    yield make
    for client in made:
        client.close()


def ingest(server: ServerProcess, *lines: str, events: int | None = None) -> None:
    """Send `lines` to TCP ingest; wait until they are `events` events (one each)."""
    before = server.stats()["Total"]
    server.send("".join(line + "\n" for line in lines).encode())
    server.wait_total(int(before) + (len(lines) if events is None else events))


def json_event(level: str, service: str, message: str) -> str:
    doc = {"ts": "2026-12-05T10:00:00Z", "level": level, "service": service, "message": message}
    return orjson.dumps(doc).decode()


def join(client: Client, channel: str) -> None:
    since = client.mark()
    client.do("join", channel)
    client.expect("endofnames", lambda e: e.args[0].lower() == channel.lower(), since)
