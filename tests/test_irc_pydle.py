"""The IRC server (SPEC §7) as pydle sees it: an asyncio client nobody here wrote.

pydle opens with `CAP LS 302`, ends negotiation on the server's empty list,
registers, joins and answers PINGs on its own. It is also the fast reader of the
flow-control case: next to it a bare socket stops reading (tests/irc_helpers.py)
while events pour in over TCP ingest; the fast one keeps getting what its
throttle (`irc.rate`, `irc.burst`) allows, the slow one has lines skipped, alone,
and once it reads again is told how many in a NOTICE; one that stays stuck past
`irc.stuck_timeout` is disconnected. With authentication on, the token is the
connection password.

Each pydle client runs in its own event loop in a thread (`PydleThread`); the
test talks to it with thread-safe calls and reads what it recorded.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pydle  # type: ignore[import-untyped]
import pytest

from logcaster.testing import ServerProcess, start_server, wait_for
from tests.irc_helpers import Flood, RawIrc, command_of, irc_metric
from tests.security_helpers import AuthServer, start_auth_server

T = TypeVar("T")
BOT = "LogBot"
SKIPPED = re.compile(r"^([\d,]+) log lines were skipped")
SKIPPED_METRIC = "logcaster_irc_skipped_lines_total"


def irc_env(**irc: str) -> dict[str, str]:
    return {**os.environ, **{f"LOGCASTER_IRC__{k.upper()}": v for k, v in irc.items()}}


# --- pydle in a thread ---------------------------------------------------------------


@dataclass(frozen=True)
class Said:
    """A PRIVMSG or NOTICE pydle received, and when."""

    kind: str  # "privmsg" or "notice"
    target: str
    by: str
    text: str
    at: float


class Recorder(pydle.Client):  # type: ignore[misc]
    """pydle's full client (every feature it has), recording what arrives."""

    RECONNECT_ON_ERROR = False  # a refused client stays refused

    def __init__(self, nick: str, joins: list[str]) -> None:
        super().__init__(nick, realname=f"{nick} (pydle)")
        self.joins = joins
        self.said: list[Said] = []
        self.commands: list[str] = []  # every command and numeric received, in order
        self.numerics: list[tuple[str, list[str]]] = []
        self.errors: list[str] = []  # ERROR lines
        self.quits: list[tuple[str, str | None]] = []
        self.joined: set[str] = set()
        self.connected_once = threading.Event()  # registered: on_connect ran
        self.ready = threading.Event()  # ...and in every channel of `joins`
        self.gone = threading.Event()  # the connection is over

    async def on_connect(self) -> None:
        await super().on_connect()
        self.connected_once.set()
        for channel in self.joins:
            await self.join(channel)
        if not self.joins:
            self.ready.set()

    async def on_join(self, channel: str, user: str) -> None:
        await super().on_join(channel, user)
        if self.is_same_nick(user, self.nickname):
            self.joined.add(channel)
            if all(c in self.joined for c in self.joins):
                self.ready.set()

    async def on_message(self, target: str, by: str, message: str) -> None:
        await super().on_message(target, by, message)
        self.said.append(Said("privmsg", target, by, message, time.monotonic()))

    async def on_notice(self, target: str, by: str, message: str) -> None:
        await super().on_notice(target, by, message)
        self.said.append(Said("notice", target, by, message, time.monotonic()))

    async def on_quit(self, user: str, message: str | None = None) -> None:
        await super().on_quit(user, message)
        self.quits.append((user, message))

    async def on_raw(self, message: Any) -> None:
        command = str(message.command)
        command = command.zfill(3) if command.isdigit() else command.upper()
        self.commands.append(command)
        params = [str(p) for p in message.params]
        if command.isdigit():
            self.numerics.append((command, params))
        elif command == "ERROR":
            self.errors.append(" ".join(params))
        await super().on_raw(message)

    async def on_disconnect(self, expected: bool) -> None:
        await super().on_disconnect(expected)
        self.gone.set()

    def numeric(self, code: str) -> list[list[str]]:
        return [params for got, params in list(self.numerics) if got == code]


class PydleThread:
    """One pydle client in its own event loop, in a thread of its own."""

    def __init__(
        self, nick: str, port: int, joins: list[str] | None = None, password: str | None = None
    ) -> None:
        self.client = Recorder(nick, joins or [])
        self.port = port
        self.password = password
        self.loop: asyncio.AbstractEventLoop | None = None
        self.error: BaseException | None = None
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name=f"pydle-{nick}", daemon=True)
        self._thread.start()
        if not self._started.wait(15):
            raise TimeoutError("pydle did not connect")
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self.error = exc
        finally:
            self._started.set()

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        await self.client.connect("127.0.0.1", self.port, password=self.password)
        self._started.set()
        await self._stop.wait()
        if self.client.connected:
            await self.client.disconnect(expected=True)

    def call(self, work: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run `work` on the client's loop and wait for its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)

    def said(self) -> list[Said]:
        return list(self.client.said)

    def wait_said(self, what: str, match: Any, timeout: float = 10.0) -> Said:
        found = wait_for(
            what,
            lambda: next((s for s in self.said() if match(s)), None),
            lambda s: s is not None,
            timeout,
        )
        assert found is not None
        return found

    def close(self) -> None:
        if self.loop is not None and self._stop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)


@pytest.fixture
def pydles() -> Iterator[list[PydleThread]]:
    """pydle clients a test started; closed after it (before its servers stop)."""
    started: list[PydleThread] = []
    yield started
    for one in started:
        one.close()


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    server = start_server("-I", "0", env=irc_env(ping_interval="1", ping_timeout="2"))
    try:
        yield server
    finally:
        server.kill()


# --- registration and a log channel ----------------------------------------------------


def test_pydle_registers_joins_and_gets_error_events(
    server: ServerProcess, pydles: list[PydleThread]
) -> None:
    one = PydleThread("pyd", server.ports["irc"], ["#logs-error"])
    pydles.append(one)
    client = one.client
    assert client.ready.wait(10), client.commands
    # It opened with CAP LS 302: the empty list ended negotiation, nothing enabled.
    assert client.commands[0] == "CAP" and not any(client._capabilities.values())
    assert [c for c in client.commands if c.isdigit()][:5] == ["001", "002", "003", "004", "005"]
    assert {"375", "372", "376"} <= set(client.commands)
    assert client.nickname == "pyd"
    assert client._isupport["NETWORK"] == "LogCaster"
    assert client._isupport["CASEMAPPING"] == "ascii"
    # NAMES (after the JOIN echo that made it ready): LogBot is in, an operator.
    channel = client.channels["#logs-error"]
    wait_for("LogBot among the users", lambda: set(channel["users"]), lambda u: BOT in u)
    assert BOT in channel["modes"].get("o", [])
    assert channel["topic"].startswith("Live ERROR,FATAL events")

    server.send(
        b"2026-12-05T10:00:00Z INFO [payment-api] PYDLE-1 not an error\n"
        b"2026-12-05T10:00:01Z ERROR [payment-api] PYDLE-2 charge failed\n"
    )
    said = one.wait_said("the ERROR event", lambda s: "PYDLE-2" in s.text)
    assert (said.kind, said.target, said.by) == ("privmsg", "#logs-error", BOT)
    assert re.fullmatch(r"\d\d:\d\d:\d\d \x0304ERROR\x03 .*PYDLE-2 charge failed #\d+", said.text)
    assert [s for s in one.said() if "PYDLE-1" in s.text] == []

    # Idle, it is pinged and answers: a second PING means the first was answered.
    wait_for("two PINGs", lambda: client.commands.count("PING"), lambda n: n >= 2, 15)
    assert client.connected and client.errors == []


# --- flow control ----------------------------------------------------------------------

RATE = 300  # lines a second to each client, and the most a channel streams (channel_rate)
BURST = 60
FLOW_ENV = irc_env(
    rate=str(RATE), channel_rate=str(RATE), burst=str(BURST), sendq_lines="100", stuck_timeout="60"
)
PAD = "x" * 480  # every event line is cut near 512 bytes: socket buffers fill fast


def flood_line(i: int) -> str:
    return f"2026-12-05T10:00:00Z INFO [flood] line {i} {PAD}"


@dataclass
class FlowRun:
    """What one flood with a fast and a slow reader in #logs-all left behind."""

    server: ServerProcess
    fast: PydleThread
    slow: RawIrc
    window: tuple[float, float]  # while skipping was going on, the flood too
    sent: int = 0
    skipped_client: float = 0.0  # the metric, reason="client", after the flood
    skipped_rate: float = 0.0
    stats: dict[str, float] = field(default_factory=dict)
    notice: str | None = None  # the slow reader's NOTICE, if one came


@pytest.fixture(scope="module")
def flow() -> Iterator[FlowRun]:
    """One flood for the flow-control tests: the slow reader stops reading, events
    come at ~5,000 a second until the server skips lines for it (and a little
    more); then the flood stops and the slow reader reads again, sending nothing,
    for up to 8 s or until a NOTICE to it arrives."""
    server = start_server("-I", "0", env=FLOW_ENV)
    fast: PydleThread | None = None
    slow: RawIrc | None = None
    try:
        http = server.ports["http"]
        fast = PydleThread("fast", server.ports["irc"], ["#logs-all"])
        assert fast.client.ready.wait(10)
        slow = RawIrc(server.ports["irc"], rcvbuf=4096)
        slow.register("slow")
        slow.send("JOIN #logs-all")
        slow.expect_command("366")
        with Flood(server.ingest_port, flood_line, batch=100, pause=0.02) as flood:
            wait_for(
                "lines skipped for the slow reader",
                lambda: irc_metric(http, SKIPPED_METRIC, reason="client"),
                lambda n: n > 0,
                timeout=30,
            )
            start = time.monotonic()
            time.sleep(2.0)  # a measured stretch: the fast reader's rate, more skips
            end = time.monotonic()
        run = FlowRun(server, fast, slow, (start, end), sent=flood.stop())
        # Reading again, and nothing else: the server has to say it by itself.
        try:
            run.notice = slow.expect(lambda x: " NOTICE slow :" in x, "NOTICE", timeout=8)
        except TimeoutError:
            run.notice = None
        # Counted after the NOTICE: events ingested before the flood stopped still
        # reach the channel for a moment, and may be skipped too (609 told, 608
        # counted when read right after the flood).
        run.skipped_client = irc_metric(http, SKIPPED_METRIC, reason="client")
        run.skipped_rate = irc_metric(http, SKIPPED_METRIC, reason="rate")
        run.stats = server.stats()
        yield run
    finally:
        if fast is not None:
            fast.close()
        if slow is not None:
            slow.close()
        server.kill()


def test_fast_reader_gets_its_rate_while_a_slow_one_skips(flow: FlowRun) -> None:
    start, end = flow.window
    seconds = end - start
    got = [
        s for s in flow.fast.said() if s.by == BOT and s.kind == "privmsg" and start <= s.at <= end
    ]
    # What the throttle allows: RATE a second and a burst; the stream is capped
    # at RATE too, so a fast reader gets close to it, never much more.
    assert 0.75 * RATE * seconds <= len(got) <= 1.1 * RATE * seconds + BURST, (len(got), seconds)
    assert all(s.target == "#logs-all" for s in got)
    # The slow reader's skips are its own: the fast one was told of none.
    fast_skips = [s for s in flow.fast.said() if s.kind == "notice" and SKIPPED.match(s.text)]
    assert fast_skips == []
    assert flow.skipped_client > 0
    # STATS IrcSkipped counts them, with what the channel's rate cap left out.
    assert flow.skipped_rate > 0  # ~5,000 events a second into a 300-a-second channel
    assert flow.stats["IrcSkipped"] >= flow.skipped_client + flow.skipped_rate
    assert flow.stats["IrcClients"] == 2  # the slow one was not cut (stuck_timeout 60 s)


def test_slow_reader_is_told_how_many_lines_it_missed(flow: FlowRun) -> None:
    assert flow.notice is not None, f"no NOTICE; last lines {flow.slow.lines()[-3:]!r}"
    assert flow.notice.startswith(f":{BOT}!")
    text = flow.notice.split(" :", 1)[1]
    told = SKIPPED.match(text)
    assert told is not None, text
    # Every line skipped for it is in its NOTICE(s); the fast reader skipped none.
    notices = [x.split(" :", 1)[1] for x in flow.slow.lines() if " NOTICE slow :" in x]
    counts = [int(m.group(1).replace(",", "")) for n in notices if (m := SKIPPED.match(n))]
    assert sum(counts) == flow.skipped_client
    assert flow.stats["IrcSkipped"] >= sum(counts)


def test_stuck_client_is_disconnected(
    server_factory: Callable[..., ServerProcess], pydles: list[PydleThread]
) -> None:
    served: ServerProcess = server_factory(
        "-I",
        "0",
        env=irc_env(
            rate=str(RATE),
            channel_rate=str(RATE),
            burst=str(BURST),
            sendq_lines="100",
            stuck_timeout="2",
        ),
    )
    http = served.ports["http"]
    watcher = PydleThread("watcher", served.ports["irc"], ["#watch"])
    pydles.append(watcher)
    assert watcher.client.ready.wait(10)
    with RawIrc(served.ports["irc"], rcvbuf=4096) as stuck:
        stuck.register("stuck")
        stuck.send("JOIN #watch", "JOIN #logs-all")
        stuck.expect(lambda x: command_of(x) == "366" and "#logs-all" in x, "366 #logs-all")
        with Flood(served.ingest_port, flood_line, batch=100, pause=0.02):
            wait_for(
                "the stuck client's QUIT",
                lambda: list(watcher.client.quits),
                lambda quits: any(nick == "stuck" for nick, _ in quits),
                timeout=30,
            )
        reason = next(msg for nick, msg in watcher.client.quits if nick == "stuck")
        assert reason == "Client did not read"
        assert irc_metric(http, "logcaster_irc_disconnects_total", reason="stuck") == 1
        wait_for("one IRC client left", served.stats, lambda s: s["IrcClients"] == 1)
        stuck.read_until_eof(timeout=10)  # the connection is closed
    assert watcher.client.connected


# --- authentication --------------------------------------------------------------------


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    data: Path = tmp_path_factory.mktemp("irc-auth") / "data"
    server = start_auth_server(data, "-I", "0", env={"LOGCASTER_IRC__MOTD": "[]"})
    try:
        yield server
    finally:
        server.server.kill()


def test_pass_with_a_viewer_token_registers(auth: AuthServer, pydles: list[PydleThread]) -> None:
    port = auth.server.ports["irc"]
    viewer = PydleThread("viewer", port, ["#logs-error"], password=auth.tokens["viewer"])
    pydles.append(viewer)
    assert viewer.client.ready.wait(15), viewer.client.commands
    assert viewer.client.numeric("001") and viewer.client.numeric("464") == []
    assert viewer.client.numeric("422")  # irc.motd: [] (pydle registers on 422 too)
    ingest = auth.tokens["ingest"]
    auth.server.send(
        f"#LOGCASTER AUTH {ingest}\n2026-12-05T10:00:00Z ERROR [auth] AUTHMARK\n".encode()
    )
    said = viewer.wait_said("the event", lambda s: "AUTHMARK" in s.text)
    assert (said.by, said.target) == (BOT, "#logs-error")
    # A viewer may search, not change what a log channel streams (that takes RELOAD).
    viewer.call(viewer.client.message("#logs-error", "!query keyword=AUTHMARK"))
    found = viewer.wait_said("the answer", lambda s: s.by == BOT and s.text.startswith("FOUND"))
    assert found.text == "FOUND: 1 matches"
    viewer.call(viewer.client.message("#logs-error", "!logfilter service=auth"))
    refused = viewer.wait_said("the refusal", lambda s: s.by == BOT and "only" in s.text)
    assert refused.text == "only an operator or admin may change what #logs-error streams"


@pytest.mark.parametrize("password", [None, "lc_00000000_" + "A" * 43, "ingest"])
def test_pass_missing_or_not_allowed_is_464(
    auth: AuthServer, pydles: list[PydleThread], password: str | None
) -> None:
    """No PASS, a token that is no token, and a valid one without READ_LOGS (the
    ingest role): 464 Password incorrect, ERROR, the connection closed."""
    token = auth.tokens.get(password or "", password)
    denied_before = len(_irc_denials(auth))
    refused = PydleThread("refused", auth.server.ports["irc"], ["#logs-error"], password=token)
    pydles.append(refused)
    assert refused.client.gone.wait(15), refused.client.commands
    assert [params[-1] for params in refused.client.numeric("464")] == ["Password incorrect"]
    assert not refused.client.connected_once.is_set()
    assert refused.client.numeric("001") == []
    assert len(refused.client.errors) == 1 and "Password incorrect" in refused.client.errors[0]
    # ...and audited.
    wait_for(
        "the refusal's audit entry", lambda: len(_irc_denials(auth)), lambda n: n > denied_before
    )


def _irc_denials(auth: AuthServer) -> list[dict[str, Any]]:
    return [e for e in auth.audit() if e.get("listener") == "irc" and e.get("result") == "denied"]
