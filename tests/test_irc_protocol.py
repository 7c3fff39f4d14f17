"""The IRC server (SPEC §7) against jaraco's `irc` library: the protocol as a
real client library sees it (RFC 1459/2812, modern.ircdocs.horse).

Each `Client` is one `irc.client.Reactor` with one connection, run in a thread;
every event the library raises is recorded with its type, as the library names
it: numerics by name from its codes table ("welcome", "nicknameinuse",
"featurelist" for 005, "channelcreate" for 329), or by number when it has none
("417"). For a numeric the library puts our nick in `target` and the rest in
`arguments`. What the library cannot do on purpose (never answer PING, send an
over-long line, show the exact bytes) is done with a bare socket
(tests/irc_helpers.py).

One server for the module, with a one-second ping interval and timeout so the
ping tests are short, and a rate high enough that replies are not held back.
Events other tests sent reach the log channels too, so each test looks for its
own text, and only this module's `test_logfilter_*` changes #logs-debug.
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
import pytest

from logcaster.testing import ServerProcess, start_server, wait_for
from tests.irc_helpers import MAX_LINE, RawIrc, command_of, irc_metric

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


# --- fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    server = start_server("-I", "0", env={**os.environ, **ENV})
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def connect(server: ServerProcess) -> Iterator[Connect]:
    """Connect clients (registered unless told); all closed after the test."""
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


# --- registration --------------------------------------------------------------------


def test_registration_welcome_isupport_motd(connect: Connect) -> None:
    alice = connect("Alice")
    kinds = [e.type for e in alice.seen() if e.type not in ("ping", "pong")]
    welcome = ["welcome", "yourhost", "created", "myinfo", "featurelist"]
    assert kinds[:5] == welcome, kinds
    motd = kinds[kinds.index("motdstart") :]
    assert motd[0] == "motdstart" and motd[-1] == "endofmotd"
    assert set(motd[1:-1]) == {"motd"} and len(motd) >= 3
    assert kinds.index("featurelist") < kinds.index("motdstart")

    first = alice.expect("welcome")
    assert first.target == "Alice" and first.source == SERVER
    assert "Alice!" in first.text  # 001 ends with the client's mask
    myinfo = alice.expect("myinfo")
    assert myinfo.args[0] == SERVER and len(myinfo.args) >= 4  # server, version, umodes, chanmodes

    isupport = alice.expect("featurelist")
    assert isupport.text == "are supported by this server"
    tokens = dict(t.partition("=")[::2] for t in isupport.args[:-1])
    for name in ("CASEMAPPING", "CHANTYPES", "PREFIX", "CHANMODES", "NETWORK"):
        assert tokens.get(name), (name, tokens)
    for name in ("NICKLEN", "CHANNELLEN", "TOPICLEN"):
        assert int(tokens[name]) > 0, (name, tokens)
    assert tokens["CHANTYPES"] == "#"
    assert tokens["PREFIX"] == "(o)@"
    assert tokens["CASEMAPPING"] == "ascii"
    # ... and the library understood them.
    features = alice.conn.features
    assert features.network == "LogCaster"
    assert dict(features.prefix) == {"@": "o"}
    assert features.chanmodes[0] == "b"


def test_motd_missing_is_422() -> None:
    env = {**os.environ, **ENV, "LOGCASTER_IRC__MOTD": "[]"}
    with start_server("-I", "0", env=env) as bare:
        client = Client(bare.ports["irc"], "nomotd")
        try:
            missing = client.expect("nomotd")
            assert missing.target == "nomotd"
            assert [e for e in client.seen() if e.type in ("motdstart", "motd", "endofmotd")] == []
            assert client.index(client.expect("featurelist")) < client.index(missing)
        finally:
            client.close()


def test_cap_ls_holds_registration_until_end(connect: Connect) -> None:
    """CAP LS 302 first: `CAP * LS :` (no capabilities), every REQ NAKed, an
    unknown subcommand 410, commands before registration 451, and no welcome
    until CAP END."""
    carol = connect("carol", register=False, first=b"CAP LS 302\r\n")
    ls = carol.expect("cap", lambda e: e.args[:1] == ("LS",))
    assert (ls.source, ls.target, ls.args) == (SERVER, "*", ("LS", ""))
    assert f":{SERVER} CAP * LS :" in carol.raw

    carol.do("send_raw", "JOIN #early")
    carol.do("send_raw", "PRIVMSG carol :hello")
    carol.do("cap", "REQ", "multi-prefix", "sasl")
    carol.do("send_raw", "CAP FROB")
    done = carol.sync()
    # Before registration a reply names the client by its nick once it has one,
    # or `*` (modern.ircdocs.horse, IRCv3 CAP): both are right.
    nak = carol.expect("cap", lambda e: e.args[:1] == ("NAK",))
    assert nak.target in ("*", "carol") and nak.args[1].split() == ["multi-prefix", "sasl"]
    unknown = carol.expect("invalidcapcmd")
    assert unknown.target in ("*", "carol") and unknown.args[0] == "FROB"
    refused = carol.seen("notregistered", until=done)
    assert len(refused) == 2 and all(e.target in ("*", "carol") for e in refused)
    assert carol.seen("welcome", until=done) == []  # NICK and USER were sent: held by CAP

    carol.do("cap", "END")
    carol.expect("welcome")
    carol.expect("endofmotd")
    since = carol.mark()
    carol.do("cap", "LIST")
    listed = carol.expect("cap", lambda e: e.args[:1] == ("LIST",), since)
    assert listed.target == "carol" and listed.args == ("LIST", "")
    carol.do("send_raw", "CAP REQ :echo-message")
    nak = carol.expect("cap", lambda e: e.args[:1] == ("NAK",), since)
    assert nak.target == "carol" and nak.args[1] == "echo-message"


def test_unknown_command_421(connect: Connect) -> None:
    dave = connect("dave")
    since = dave.mark()
    dave.do("send_raw", "FROBNICATE now")
    unknown = dave.expect("unknowncommand", since=since)
    assert unknown.target == "dave" and unknown.args == ("FROBNICATE", "Unknown command")


def test_nick_collision_433_and_invalid_nick_432(connect: Connect) -> None:
    erin = connect("erin")
    bob = connect("bob_")
    join(erin, "#nicks")
    join(bob, "#nicks")

    # Taken, in another case (CASEMAPPING=ascii): 433 before registration...
    twin = connect("ERIN", register=False)
    taken = twin.expect("nicknameinuse")
    assert taken.target == "*" and taken.args[0] == "ERIN"
    assert twin.seen("welcome", until=twin.sync()) == []
    twin.do("nick", "erin_2")
    assert twin.expect("welcome").target == "erin_2"

    # ...and after, by a nick change; LogBot's nick is taken too.
    since = bob.mark()
    bob.do("nick", "Erin")
    bob.do("nick", "logbot")
    bob.sync()
    in_use = bob.seen("nicknameinuse", since)
    assert [(e.target, e.args[0]) for e in in_use] == [("bob_", "Erin"), ("bob_", "logbot")]

    # Invalid: a leading digit, a character nicks may not hold, too long (NICKLEN=30).
    bad = connect("9lives", register=False)
    assert bad.expect("erroneusnickname").args[0] == "9lives"
    bad.do("nick", "nine_lives")
    bad.expect("welcome")
    since = bob.mark()
    for wrong in ("b@d", "#chan", "x" * 31):
        bob.do("send_raw", f"NICK {wrong}")
    bob.sync()
    assert len(bob.seen("erroneusnickname", since)) == 3

    # A nick change is told to the channels' members (once each, though erin
    # shares two channels with bob) and to the changer.
    join(erin, "#nicks2")
    join(bob, "#nicks2")
    since_erin = erin.mark()
    bob.do("nick", "bobby")
    change = erin.expect("nick", since=since_erin)
    assert (change.nick, change.target) == ("bob_", "bobby")
    assert bob.expect("nick", lambda e: e.target == "bobby").nick == "bob_"
    erin.sync()
    assert len(erin.seen("nick", since_erin)) == 1
    erin.do("names", "#nicks")
    assert "bobby" in erin.expect("namreply", since=since_erin).args[2].split()


def test_registration_times_out_while_cap_holds_it(server: ServerProcess) -> None:
    """CAP LS without CAP END: registration never completes, and the server gives
    up after irc.register_timeout (3 s here)."""
    with RawIrc(server.ports["irc"]) as held:
        held.send("CAP LS 302", "NICK held", "USER held 0 * :held")
        held.expect(lambda line: line.endswith("CAP * LS :"), "CAP * LS :")
        lines = held.read_until_eof(timeout=10)
    assert [x for x in lines if command_of(x) == "001"] == []
    closing = [x for x in lines if command_of(x) == "ERROR"]
    assert len(closing) == 1 and "Registration timed out" in closing[0]


# --- PING and PONG -------------------------------------------------------------------


def test_ping_answered_and_server_pings_idle_clients(connect: Connect) -> None:
    frank = connect("frank")
    since = frank.mark()
    frank.do("ping", "are-you-there")
    pong = frank.expect("pong", lambda e: "are-you-there" in e.args, since)
    assert pong.source == SERVER

    # Idle, it is pinged (ping_interval 1 s); the library answers, so it stays on
    # and is pinged again (an unanswered PING would get it cut, not pinged again).
    wait_for("two PINGs", lambda: len(frank.seen("ping")), lambda n: n >= 2, timeout=15)
    assert frank.seen("ping")[0].target == SERVER
    assert frank.connected
    assert frank.seen("error") == []


def test_ping_timeout_drops_a_silent_client(server: ServerProcess, connect: Connect) -> None:
    watcher = connect("watcher")
    join(watcher, "#pingers")
    with RawIrc(server.ports["irc"]) as silent:
        silent.register("silent")
        silent.send("JOIN #pingers")
        silent.expect_command("366")
        watcher.expect("join", lambda e: e.nick == "silent")
        silent.pong = False  # from now on it never answers
        ping = silent.expect_command("PING", timeout=10)
        assert ping.split()[1:] in (["logcaster"], [":logcaster"])
        lines = silent.read_until_eof(timeout=10)
        closing = [line for line in lines if command_of(line) == "ERROR"]
        assert len(closing) == 1 and "Ping timeout" in closing[0], lines[-5:]
    quit_ = watcher.expect("quit", lambda e: e.nick == "silent")
    assert "Ping timeout" in quit_.text


# Lines that are valid IRC (a trailing parameter may hold spaces or start with
# ':'; a list may hold an empty item) whose argument the server echoes in its
# error reply: each must get its numeric and leave the connection up.
BAD_ARGUMENTS = [
    ("NICK :a b", {"432"}),
    ("NICK ::x", {"432"}),
    ("JOIN :#a b", {"403", "476"}),
    ("JOIN #ok,:b", {"403", "476"}),
    ("PART :#a b", {"403", "442"}),
    ("TOPIC :#a b", {"403", "442"}),
    ("MODE :#a b", {"403", "401"}),
    ("KICK #bad :a b", {"441", "401"}),
    ("WHOIS :a b", {"401"}),
    ("WHOIS a,:b", {"401"}),
    ("NAMES :#a b", {"366"}),
    ("WHO :#a b", {"315"}),
    ("CAP :FOO BAR", {"410"}),
    ("PRIVMSG nobody,:y :hi", {"401"}),
    ("PRIVMSG nobody,,y :hi", {"401", "411"}),
    ("NOTICE nobody,,y :hi", set()),  # NOTICE is never answered
]


@pytest.mark.parametrize(("line", "codes"), BAD_ARGUMENTS, ids=[x for x, _ in BAD_ARGUMENTS])
def test_odd_arguments_get_a_numeric_not_a_disconnect(
    server: ServerProcess, line: str, codes: set[str]
) -> None:
    with RawIrc(server.ports["irc"]) as client:
        client.register("odd")
        client.send("JOIN #bad")
        client.expect_command("366")
        start = len(client.frames)
        client.send(line, "PING :still-there")
        client.expect(lambda x: x.endswith("still-there"), "the PONG", timeout=5)
        replies = client.lines()[start:]
        numerics = {command_of(x) for x in replies if command_of(x).isdigit()}
        if codes:
            assert numerics & codes, (line, replies)
        else:
            assert numerics == set(), (line, replies)
        assert not client.eof


# --- channels ------------------------------------------------------------------------


def test_join_echo_names_and_topic_replies(connect: Connect) -> None:
    gina = connect("gina")
    since = gina.mark()
    gina.do("join", "#room")
    echo = gina.expect("join", since=since)
    assert (echo.nick, echo.target) == ("gina", "#room")
    names = gina.expect("namreply", since=since)
    assert names.args == ("=", "#room", "@gina")  # the first in, creating it: operator
    end = gina.expect("endofnames", since=since)
    assert end.args[0] == "#room"
    assert gina.index(echo) < gina.index(names) < gina.index(end)
    assert gina.seen("currenttopic", since) == gina.seen("notopic", since) == []

    hank = connect("hank")
    since_gina = gina.mark()
    join(hank, "#room")
    assert gina.expect("join", since=since_gina).nick == "hank"
    hank_names = hank.expect("namreply", lambda e: e.args[1] == "#room")
    assert sorted(hank_names.args[2].split()) == ["@gina", "hank"]

    gina.do("topic", "#room", "release at noon")
    for member in (gina, hank):
        topic = member.expect("topic", lambda e: e.target == "#room")
        assert (topic.nick, topic.args) == ("gina", ("release at noon",))

    # A topic: 332 and 333 on JOIN, before NAMES; never 331.
    ivy = connect("ivy")
    since = ivy.mark()
    join(ivy, "#room")
    joined = ivy.expect("join", since=since)
    topic = ivy.expect("currenttopic", since=since)
    info = ivy.expect("topicinfo", since=since)
    names = ivy.expect("namreply", since=since)
    assert topic.args == ("#room", "release at noon")
    assert info.args[:2] == ("#room", "gina") and int(info.args[2]) > 1_700_000_000
    assert ivy.index(joined) < ivy.index(topic) < ivy.index(info) < ivy.index(names)
    assert ivy.seen("notopic", since) == []

    # A log channel: LogBot holds it (an operator) and set its topic.
    since = ivy.mark()
    join(ivy, "#logs-error")
    topic = ivy.expect("currenttopic", since=since)
    assert topic.args[0] == "#logs-error" and "!help" in topic.args[1]
    assert ivy.expect("topicinfo", since=since).args[1] == BOT
    names = ivy.expect("namreply", since=since)
    assert "@" + BOT in names.args[2].split() and "ivy" in names.args[2].split()
    assert ivy.seen("notopic", since) == []


def test_topic_rules(connect: Connect) -> None:
    jack = connect("jack")  # creates #topics: its operator
    kim = connect("kim")
    lee = connect("lee")  # never joins
    join(jack, "#topics")
    join(kim, "#topics")

    since = kim.mark()
    kim.do("topic", "#topics")
    kim.sync()
    assert [e.args[0] for e in kim.seen("notopic", since)] == ["#topics"]

    kim.do("topic", "#topics", "mine now")  # +t: operators only
    lee.do("topic", "#topics", "from outside")
    lee.do("topic", "#nowhere", "x")
    kim.sync()
    lee.sync()
    assert [e.args[0] for e in kim.seen("chanoprivsneeded", since)] == ["#topics"]
    assert [e.args[0] for e in lee.seen("notonchannel")] == ["#topics"]
    assert [e.args[0] for e in lee.seen("nosuchchannel")] == ["#nowhere"]
    assert kim.seen("topic", since) == []

    # Anyone may read a channel's topic; the operator sets it, cut to TOPICLEN.
    jack.do("topic", "#topics", "t" * 400)
    set_ = kim.expect("topic", since=since)
    topiclen = jack.conn.features.topiclen
    assert isinstance(topiclen, int) and topiclen < 400
    assert set_.nick == "jack" and set_.text == "t" * topiclen
    since = lee.mark()
    lee.do("topic", "#topics")
    assert lee.expect("currenttopic", since=since).args == ("#topics", "t" * topiclen)
    assert lee.expect("topicinfo", since=since).args[1] == "jack"

    # -t: every member may set it; an empty topic clears it.
    jack.do("mode", "#topics", "-t")
    assert kim.expect("mode", lambda e: e.args == ("-t",), since).nick == "jack"
    kim.do("topic", "#topics", "kim was here")
    assert jack.expect("topic", lambda e: e.text == "kim was here").nick == "kim"
    since = kim.mark()
    kim.do("send_raw", "TOPIC #topics :")
    assert jack.expect("topic", lambda e: e.text == "").nick == "kim"
    kim.do("topic", "#topics")
    assert kim.expect("notopic", since=since).args[0] == "#topics"


def test_part(connect: Connect) -> None:
    mia = connect("mia")
    ned = connect("ned")
    join(mia, "#parting")
    join(ned, "#parting")
    mia.do("topic", "#parting", "old topic")
    ned.expect("topic")
    since = ned.mark()
    # The library's part() sends its reason without the ':' a multi-word one needs.
    mia.do("send_raw", "PART #parting :off to lunch")
    for member in (mia, ned):
        left = member.expect("part", lambda e: e.target == "#parting")
        assert (left.nick, left.args) == ("mia", ("off to lunch",))
    mia.do("part", "#parting")
    mia.do("part", "#never-was")
    mia.sync()
    assert [e.args[0] for e in mia.seen("notonchannel")] == ["#parting"]
    assert [e.args[0] for e in mia.seen("nosuchchannel")] == ["#never-was"]
    ned.do("names", "#parting")
    assert ned.expect("namreply", since=since).args[2].split() == ["ned"]

    # The last one out: the channel is gone (its topic too), and whoever creates
    # it again runs it.
    ned.do("part", "#parting")
    ned.expect("part", since=since)
    since = mia.mark()
    mia.do("join", "#parting")
    assert mia.expect("namreply", since=since).args[2] == "@mia"
    mia.sync()
    assert mia.seen("currenttopic", since) == []

    # JOIN 0 leaves every channel.
    join(mia, "#parting2")
    since = mia.mark()
    mia.do("join", "0")
    mia.sync()
    parted = {e.target for e in mia.seen("part", since) if e.nick == "mia"}
    assert parted == {"#parting", "#parting2"}


def test_quit_is_told_to_channel_members(server: ServerProcess, connect: Connect) -> None:
    olga = connect("olga")
    pete = connect("pete")
    for channel in ("#quitters", "#quitters2"):
        join(olga, channel)
        join(pete, channel)
    pete.do("quit", "gone fishing")
    gone = olga.expect("quit", lambda e: e.nick == "pete")
    assert gone.text == "Quit: gone fishing"
    olga.sync()
    assert len(olga.seen("quit")) == 1  # once, though they shared two channels
    error = pete.expect("error")  # the server's last word to the quitter
    assert error.target.startswith("Closing Link")
    wait_for("pete's disconnection", lambda: pete.connected, lambda up: not up, timeout=10)
    # The nick is free again, and no longer in the channel.
    since = olga.mark()
    olga.do("whois", "pete")
    assert olga.expect("nosuchnick", since=since).args[0] == "pete"
    olga.do("names", "#quitters")
    assert olga.expect("namreply", since=since).args[2].split() == ["@olga"]
    connect("pete")

    # A connection closed without QUIT is told as a QUIT too.
    with RawIrc(server.ports["irc"]) as raw:
        raw.register("vanishing")
        raw.send("JOIN #quitters")
        raw.expect_command("366")
    assert olga.expect("quit", lambda e: e.nick == "vanishing").text


def test_privmsg_and_notice_to_users_and_channels(connect: Connect) -> None:
    quinn = connect("quinn")
    rosa = connect("rosa")
    sam = connect("sam")  # outside #talk
    join(quinn, "#talk")
    join(rosa, "#talk")

    quinn.do("privmsg", "#talk", "hello channel")
    quinn.do("notice", "#talk", "channel notice")
    quinn.do("privmsg", "rosa", "hello rosa")
    quinn.do("notice", "ROSA", "notice to rosa")
    msg = rosa.expect("pubmsg")
    assert (msg.nick, msg.target, msg.text) == ("quinn", "#talk", "hello channel")
    note = rosa.expect("pubnotice")
    assert (note.nick, note.target, note.text) == ("quinn", "#talk", "channel notice")
    private = rosa.expect("privmsg")
    assert (private.nick, private.target, private.text) == ("quinn", "rosa", "hello rosa")
    assert rosa.expect("privnotice").text == "notice to rosa"
    done = quinn.sync()
    assert quinn.seen("pubmsg", until=done) == quinn.seen("pubnotice", until=done) == []

    # From outside a +n channel: 404 for PRIVMSG, nothing at all for NOTICE.
    since = rosa.mark()
    since_sam = sam.mark()
    sam.do("privmsg", "#talk", "let me in")
    sam.do("notice", "#talk", "me too")
    sam.do("privmsg", "nobody-here", "hello?")
    sam.do("notice", "nobody-here", "hello?")
    done = sam.sync()
    replies = [e for e in sam.seen(since=since_sam, until=done + 1) if e.source == SERVER]
    assert [(e.type, e.args[0]) for e in replies] == [
        ("cannotsendtochan", "#talk"),
        ("nosuchnick", "nobody-here"),
        ("pong", replies[-1].args[0]),
    ]
    rosa.sync()
    assert rosa.seen("pubmsg", since) == rosa.seen("pubnotice", since) == []

    # No recipient, no text.
    since = sam.mark()
    sam.do("send_raw", "PRIVMSG")
    sam.do("send_raw", "PRIVMSG rosa")
    sam.do("send_raw", "PRIVMSG rosa :")
    sam.sync()
    assert len(sam.seen("norecipient", since)) == 1
    assert len(sam.seen("notexttosend", since)) == 2


def test_list_names_who_whois(connect: Connect) -> None:
    tom = connect("tom")
    uma = connect("uma")
    join(tom, "#lw")
    join(uma, "#lw")
    tom.do("topic", "#lw", "list me")
    tom.expect("topic")

    since = tom.mark()
    tom.do("list")
    start = tom.expect("liststart", since=since)
    end = tom.expect("listend", since=since)
    rows = {e.args[0]: e.args[1:] for e in tom.seen("list", since)}
    assert tom.index(start) < tom.index(end)
    for channel in ("#logs-all", "#logs-error", "#logs-warning", "#logs-info", "#logs-debug"):
        assert channel in rows, rows
    assert rows["#lw"] == ("2", "list me")

    since = uma.mark()
    uma.do("names", "#lw")
    assert sorted(uma.expect("namreply", since=since).args[2].split()) == ["@tom", "uma"]
    assert uma.expect("endofnames", since=since).args[0] == "#lw"

    since = uma.mark()
    uma.do("who", "#lw")
    end = uma.expect("endofwho", since=since)
    who = {e.args[4]: e.args for e in uma.seen("whoreply", since)}
    assert end.args[0] == "#lw" and set(who) == {"tom", "uma"}
    channel, user, host, server, _nick, flags, last = who["tom"]
    assert (channel, user, host, server, flags) == ("#lw", "~tom", HOST, SERVER, "H@")
    assert last == "0 tom (jaraco irc)"  # hop count, real name
    assert who["uma"][5] == "H"

    since = uma.mark()
    uma.do("whois", "tom")
    end = uma.expect("endofwhois", since=since)
    user_ = uma.expect("whoisuser", since=since)
    assert user_.args == ("tom", "~tom", HOST, "*", "tom (jaraco irc)")
    assert uma.expect("whoisserver", since=since).args[:2] == ("tom", SERVER)
    assert "@#lw" in uma.expect("whoischannels", since=since).args[1].split()
    assert end.args[0] == "tom" and uma.index(user_) < uma.index(end)

    since = uma.mark()
    uma.do("whois", "ghost")
    assert uma.expect("nosuchnick", since=since).args[0] == "ghost"
    assert uma.expect("endofwhois", since=since).args[0] == "ghost"
    assert uma.seen("whoisuser", since) == []

    since = uma.mark()
    uma.do("whois", BOT)
    assert uma.expect("whoisuser", since=since).args[0] == BOT
    uma.expect("endofwhois", since=since)


def test_mode_channel_and_user(connect: Connect) -> None:
    vic = connect("vic")
    wes = connect("wes")
    join(vic, "#modes")
    join(wes, "#modes")

    since = wes.mark()
    wes.do("send_raw", "MODE #modes")
    is_ = wes.expect("channelmodeis", since=since)
    assert is_.args[0] == "#modes" and set(is_.args[1].lstrip("+")) >= {"n", "t"}
    created = wes.expect("channelcreate", since=since)
    assert created.args[0] == "#modes" and int(created.args[1]) > 1_700_000_000
    wes.do("send_raw", "MODE #modes b")
    wes.do("send_raw", "MODE #modes +b")
    wes.sync()
    assert [e.args[0] for e in wes.seen("endofbanlist", since)] == ["#modes", "#modes"]
    assert wes.seen("banlist", since) == []

    # Operators only change a channel's modes; +o makes another an operator.
    wes.do("mode", "#modes", "-n")
    assert wes.expect("chanoprivsneeded", since=since).args[0] == "#modes"
    vic.do("mode", "#modes", "+o wes")
    for member in (vic, wes):
        given = member.expect("mode", lambda e: e.args == ("+o", "wes"))
        assert (given.nick, given.target) == ("vic", "#modes")
    wes.do("names", "#modes")
    assert sorted(wes.expect("namreply", since=since).args[2].split()) == ["@vic", "@wes"]

    # User modes: one's own only.
    since = wes.mark()
    wes.do("send_raw", "MODE wes")
    assert wes.expect("umodeis", since=since).args[0].startswith("+")
    wes.do("mode", "wes", "+i")
    echoed = wes.expect("umode", since=since)
    assert (echoed.target, echoed.args) == ("wes", ("+i",))
    wes.do("mode", "vic", "+i")
    assert wes.expect("usersdontmatch", since=since).target == "wes"
    wes.do("mode", "ghost", "+i")
    assert wes.expect("nosuchnick", since=since).args[0] == "ghost"


def test_kick_by_operator_only(connect: Connect) -> None:
    xena = connect("xena")  # operator of #kicks
    yuri = connect("yuri")
    zoe = connect("zoe")
    for client in (xena, yuri, zoe):
        join(client, "#kicks")

    since = yuri.mark()
    yuri.do("kick", "#kicks", "xena", "coup")
    assert yuri.expect("chanoprivsneeded", since=since).args[0] == "#kicks"
    xena.do("kick", "#kicks", "nobody", "x")
    assert xena.expect("usernotinchannel").args[:2] == ("nobody", "#kicks")
    assert xena.seen("kick") == []

    xena.do("kick", "#kicks", "yuri", "behave")
    for member in (xena, yuri, zoe):
        kicked = member.expect("kick")
        assert (kicked.nick, kicked.target, kicked.args) == ("xena", "#kicks", ("yuri", "behave"))
    since = yuri.mark()
    yuri.do("privmsg", "#kicks", "still here?")
    assert yuri.expect("cannotsendtochan", since=since).args[0] == "#kicks"
    since_zoe = zoe.mark()
    zoe.do("names", "#kicks")
    assert sorted(zoe.expect("namreply", since=since_zoe).args[2].split()) == ["@xena", "zoe"]
    yuri.do("kick", "#kicks", "zoe")
    assert yuri.expect("notonchannel", since=since).args[0] == "#kicks"


def test_channel_names_fold_in_ascii_only(connect: Connect) -> None:
    """CASEMAPPING=ascii (modern.ircdocs.horse): only A-Z and a-z are equal in
    another case; other characters are distinct. #Äpfel and #äpfel are two
    channels, and so are #keys and #\u212aeys (KELVIN SIGN, which str.lower()
    makes a k)."""
    jay = connect("jay")
    kay = connect("kay")
    for mine, other in (("#Äpfel", "#äpfel"), ("#keys", "#\u212aeys")):
        join(jay, mine)
        since = kay.mark()
        since_jay = jay.mark()
        kay.do("join", other)
        echo = kay.expect("join", since=since)
        assert echo.target == other
        assert kay.expect("namreply", since=since).args[1:] == (other, "@kay")
        jay.sync()
        assert jay.seen("join", since_jay) == []


def test_away_userhost_ison_version_motd(connect: Connect) -> None:
    """The smaller commands docs/irc.md lists: AWAY (306/305, 301 to a sender,
    G in WHO), USERHOST (302), ISON (303), VERSION (351), MOTD."""
    lia = connect("lia")
    max_ = connect("max")
    join(lia, "#away")
    join(max_, "#away")
    since = lia.mark()
    lia.do("send_raw", "AWAY :at lunch")
    assert lia.expect("nowaway", since=since).target == "lia"
    since_max = max_.mark()
    max_.do("privmsg", "lia", "are you there?")
    away = max_.expect("away", since=since_max)
    assert away.args == ("lia", "at lunch")
    assert lia.expect("privmsg", since=since).text == "are you there?"
    max_.do("who", "#away")
    max_.expect("endofwho", since=since_max)
    flags = {e.args[4]: e.args[5] for e in max_.seen("whoreply", since_max)}
    assert flags == {"lia": "G@", "max": "H"}
    max_.do("send_raw", "USERHOST lia max")  # the library's userhost() joins with commas
    hosts = max_.expect("userhost", since=since_max).text.split()
    assert sorted(hosts) == [f"lia=-~lia@{HOST}", f"max=+~max@{HOST}"]
    max_.do("send_raw", "ISON lia ghost MAX")
    assert max_.expect("ison", since=since_max).text.split() == ["lia", "max"]
    max_.do("version")
    assert max_.expect("version", since=since_max).args[1] == SERVER
    max_.do("motd")
    max_.expect("endofmotd", since=since_max)
    lia.do("send_raw", "AWAY")
    assert lia.expect("unaway", since=since).target == "lia"
    since_max = max_.mark()
    max_.do("privmsg", "lia", "back?")
    max_.sync()
    assert max_.seen("away", since_max) == []


def test_ctcp_to_logbot_is_not_answered(connect: Connect) -> None:
    nia = connect("nia")
    since = nia.mark()
    nia.do("ctcp", "VERSION", BOT)
    nia.do("ctcp", "PING", BOT, "12345")
    nia.sync()
    assert [e for e in nia.seen(since=since) if e.nick == BOT] == []


# --- lines: length and control characters ------------------------------------------


def test_line_length_limit(server: ServerProcess, connect: Connect) -> None:
    """Nothing the server sends is over 512 bytes with its CR LF: a 2,000-byte
    event arrives cut (ending in …), so does a relayed message that fit the
    sender's line but not the receiver's (it gains the sender's mask)."""
    reader = connect("reader")
    join(reader, "#logs-error")
    with RawIrc(server.ports["irc"]) as raw:
        raw.register("rawlen")
        raw.send("JOIN #logs-error", "JOIN #len")
        raw.expect(lambda line: command_of(line) == "366" and "#len" in line, "366 #len")
        join(reader, "#len")

        body = "LONGLINE " + "".join(f"{i:04d}-" for i in range(400))  # 2,000 bytes
        emoji = "LONGEMOJI " + "\U0001f600" * 500  # 2,000 bytes of 4-byte characters
        ingest(
            server,
            f"2026-12-05T10:00:00Z ERROR [lengthy] {body}",
            f"2026-12-05T10:00:00Z ERROR [lengthy] {emoji}",
        )
        shown = raw.expect(lambda line: "LONGLINE" in line, "the long event")
        assert shown.startswith(f":{BOT}!") and shown.endswith("…")
        got = reader.expect("pubmsg", lambda e: "LONGLINE" in e.text)
        assert got.nick == BOT and got.target == "#logs-error" and got.text.endswith("…")
        assert len(got.text.encode()) < 500
        # Cut at a character's boundary: valid UTF-8 (the library decodes strictly).
        raw.expect(lambda line: "LONGEMOJI" in line, "the long emoji event")
        frame = next(f for f in raw.frames if b"LONGEMOJI" in f)
        assert frame.decode("utf-8").endswith("\U0001f600…\r\n")
        assert reader.expect("pubmsg", lambda e: "LONGEMOJI" in e.text).text.endswith("…")

        # 490 bytes from the sender: a valid line, over 512 once the mask is added.
        text = "RELAY " + "z" * (490 - len("PRIVMSG #len :RELAY "))
        raw.send(f"PRIVMSG #len :{text}")
        relayed = reader.expect("pubmsg", lambda e: e.text.startswith("RELAY "))
        assert relayed.nick == "rawlen" and text.startswith(relayed.text)
        line = next(x for x in reader.raw if "RELAY " in x)
        assert len(line.encode()) + 2 <= MAX_LINE

        raw.send("PING :done")
        raw.expect(lambda line: "done" in line, "PONG")
        too_long = [f for f in raw.frames if len(f) > MAX_LINE]
        assert too_long == []
    assert all(len(line.encode()) + 2 <= MAX_LINE for line in reader.raw)


def test_over_long_input_line_is_417(server: ServerProcess, connect: Connect) -> None:
    """RFC 2812 §2.3: a message is at most 512 bytes with its CR LF (tags aside,
    modern.ircdocs.horse); the server says 417 and drops a longer one."""
    reader = connect("reader2")
    join(reader, "#toolong")
    with RawIrc(server.ports["irc"]) as raw:
        raw.register("longsender")
        raw.send("JOIN #toolong")
        raw.expect(lambda line: command_of(line) == "366", "366")
        raw.send("PRIVMSG #toolong :OVERLONG " + "w" * 600)
        raw.send("PRIVMSG #toolong :after", "PING :probe")
        reply = raw.expect(lambda line: command_of(line) in ("417", "PONG"), "417")
        assert command_of(reply) == "417"
        reader.expect("pubmsg", lambda e: e.text == "after")
        assert [e for e in reader.seen("pubmsg") if "OVERLONG" in e.text] == []


def test_control_characters_in_events_are_shown_escaped(
    server: ServerProcess, connect: Connect
) -> None:
    reader = connect("escapes")
    join(reader, "#logs-error")
    with RawIrc(server.ports["irc"]) as raw:
        raw.register("rawesc")
        raw.send("JOIN #logs-error")
        raw.expect_command("366")
        evil = "CTRLMARK " + " ".join(f"a{ch}b" for ch in CONTROLS) + " end"
        doc = {
            "ts": "2026-12-05T10:00:00Z",
            "level": "error",
            "service": "svc\x1b[2J",  # ESC: clear the screen
            "request_id": "r\x03" + "04id",
            "message": "JSONCTRL \x02bold\x0f \u202eevil",
        }
        ingest(
            server,
            f"2026-12-05T10:00:00Z ERROR [esc] {evil}",
            orjson.dumps(doc).decode(),
        )
        frame = raw.expect(lambda line: "CTRLMARK" in line, "the event")
        json_frame = raw.expect(lambda line: "JSONCTRL" in line, "the JSON event")
        got = reader.expect("pubmsg", lambda e: "CTRLMARK" in e.text)
        json_got = reader.expect("pubmsg", lambda e: "JSONCTRL" in e.text)
    assert reader.seen("ctcp") == []  # \x01 did not make it a CTCP
    for text in (frame, got.text):
        plain = _without_level_colour(text)
        for escape in CONTROLS.values():
            assert f"a{escape}b" in plain, (escape, plain)
    for text in (json_frame, json_got.text):
        plain = _without_level_colour(text)
        assert "svc\\x1b[2J" in plain and "[req=r\\x0304id]" in plain, plain
        assert "JSONCTRL \\x02bold\\x0f \\u202eevil" in plain, plain

    # What LogBot shows of them on request is escaped too: !query rows, !show.
    join(reader, "#esc")
    since = reader.mark()
    reader.do("privmsg", "#esc", "!query keyword=CTRLMARK")
    row = reader.expect("pubmsg", lambda e: e.nick == BOT and "CTRLMARK" in e.text, since)
    _without_level_colour(row.text)
    event_id = row.text.rsplit("#", 1)[1]
    reader.do("privmsg", "#esc", f"!show {event_id}")
    body = reader.expect("privnotice", lambda e: e.text.startswith("2026-12-05T"), since)
    assert "a\\x1bb" in body.text
    for notice in reader.seen("privnotice", since):
        _without_level_colour(notice.text)


def _without_level_colour(text: str) -> str:
    """`text` without the level's colour (the server's own, the only control
    character it may hold); fails if any other control character is left."""
    plain = LEVEL_COLOUR.sub("", text, count=1)
    assert UNSAFE.search(plain) is None, repr(plain)
    return plain


# --- log channels and LogBot ---


def test_log_channels_stream_their_levels(server: ServerProcess, connect: Connect) -> None:
    levels = {
        "#logs-all": {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"},
        "#logs-error": {"ERROR", "FATAL"},
        "#logs-warning": {"WARN"},
        "#logs-info": {"INFO"},
        "#logs-debug": {"DEBUG", "TRACE"},
    }
    olive = connect("olive")
    for channel in levels:
        join(olive, channel)
    since = olive.mark()
    ingest(
        server,
        *(f"2026-12-05T10:00:00Z {lv} [lv] LEVELMARK-{lv}" for lv in sorted(levels["#logs-all"])),
    )
    wait_for(
        "every channel's events",
        lambda: len([e for e in olive.seen("pubmsg", since) if "LEVELMARK" in e.text]),
        lambda n: n >= sum(len(v) for v in levels.values()),
    )
    olive.sync()
    got: dict[str, set[str]] = {}
    for ev in olive.seen("pubmsg", since):
        if "LEVELMARK" in ev.text:
            assert ev.nick == BOT and ev.source == f"{BOT}!logbot@{SERVER}"
            got.setdefault(ev.target, set()).add(ev.text.rsplit("LEVELMARK-", 1)[1].split()[0])
    assert got == levels


# --- LogBot ---------------------------------------------------------------------------


def test_logbot_help_and_stats(connect: Connect) -> None:
    abe = connect("abe")
    bea = connect("bea")
    join(abe, "#bot")
    join(bea, "#bot")
    since = bea.mark()
    abe.do("privmsg", "#bot", "!help")
    # Everyone in the channel sees the question and the answer.
    assert bea.expect("pubmsg", lambda e: e.text == "!help", since).nick == "abe"
    last = bea.expect("pubmsg", lambda e: e.nick == BOT and e.text.startswith("Log channels:"))
    help_ = bea.said_by_bot(since, "#bot")
    assert bea.index(last) > since and len(help_) >= 5
    joined = " ".join(help_)
    for command in ("!query", "!show", "!stats", "!logfilter", "!logstream"):
        assert command in joined, command
    assert last.text.split()[2:] == [
        "#logs-all", "#logs-error", "#logs-warning", "#logs-info", "#logs-debug",
    ]  # fmt: skip

    since = abe.mark()
    abe.do("privmsg", "#bot", "!stats")
    stats = abe.expect("pubmsg", lambda e: e.nick == BOT and e.text.startswith("STATS:"), since)
    values = dict(kv.split("=") for kv in stats.text.split()[1:])
    assert float(values["IrcClients"]) >= 2 and "Total" in values

    # To LogBot directly: the answer comes privately.
    since = abe.mark()
    abe.do("privmsg", BOT, "!stats")
    private = abe.expect("privmsg", lambda e: e.nick == BOT, since)
    assert private.target == "abe" and private.text.startswith("STATS:")
    abe.do("privmsg", BOT, "hello there")
    unknown = abe.expect("privmsg", lambda e: e.nick == BOT and "unknown" in e.text, since)
    assert "!help" in unknown.text
    # Other `!words` in a channel are chat: passed on, not answered.
    since = bea.mark()
    abe.do("privmsg", "#bot", "!nonsense is just chat")
    bea.expect("pubmsg", lambda e: e.text == "!nonsense is just chat", since)
    abe.sync()
    bea.sync()
    assert bea.said_by_bot(since) == []


def test_logbot_query_and_show(server: ServerProcess, connect: Connect) -> None:
    cal = connect("cal")
    dee = connect("dee")
    join(cal, "#search")
    join(dee, "#search")
    ingest(server, *(json_event("error", "qsvc", f"query row {i}") for i in range(7)))

    since = dee.mark()
    cal.do("privmsg", "#search", "!query service=qsvc")
    more = dee.expect("pubmsg", lambda e: e.nick == BOT and e.text.startswith("..."), since)
    said = dee.said_by_bot(since, "#search")
    assert said[0] == "FOUND: 7 matches"
    rows = said[1:-1]
    assert len(rows) == 5 and all("qsvc query row" in r for r in rows)  # irc.query_rows
    assert more.text.startswith("... 2 more") and "limit=" in more.text

    since = cal.mark()
    cal.do("privmsg", "#search", "!query service=qsvc limit=7")
    wait_for("7 rows", lambda: cal.said_by_bot(since, "#search"), lambda s: len(s) >= 8)
    cal.sync()
    said = cal.said_by_bot(since, "#search")
    assert said[0] == "FOUND: 7 matches" and len(said) == 8
    assert sorted(r.split("qsvc ")[1].split(" #")[0] for r in said[1:]) == [
        f"query row {i}" for i in range(7)
    ]

    since = cal.mark()
    cal.do("privmsg", "#search", "!query service=qsvc level=")
    bad = cal.expect("pubmsg", lambda e: e.nick == BOT, since)
    assert bad.text.startswith("error:")

    # !show ID: the whole event, to the asker alone, as NOTICEs.
    ingest(
        server,
        "2026-12-05T10:00:00Z ERROR [show] SHOWMARK boom",
        "  at frame.one(File.java:1)",
        "  at frame.two(File.java:2)",
        "2026-12-05T10:00:01Z ERROR [show] flushes the trace before it",
        events=2,
    )
    since = cal.mark()
    since_dee = dee.mark()
    cal.do("privmsg", "#search", "!query keyword=SHOWMARK")
    row = cal.expect("pubmsg", lambda e: e.nick == BOT and "SHOWMARK" in e.text, since)
    assert "(+2 lines: !show " in row.text
    event_id = row.text.rsplit("!show ", 1)[1].rstrip(")")
    cal.do("privmsg", "#search", f"!show {event_id}")
    last = cal.expect("privnotice", lambda e: "frame.two" in e.text, since)
    notices = [e for e in cal.seen("privnotice", since) if e.nick == BOT]
    assert notices[0].text.startswith(f"event {event_id}: ")
    assert [n.text for n in notices[1:]] == [
        "2026-12-05T10:00:00Z ERROR [show] SHOWMARK boom",
        "  at frame.one(File.java:1)",
        "  at frame.two(File.java:2)",
    ]
    assert last.target == "cal"
    dee.expect("pubmsg", lambda e: e.text == f"!show {event_id}", since_dee)
    dee.sync()
    assert dee.seen("privnotice", since_dee) == []

    since = cal.mark()
    cal.do("privmsg", "#search", "!show 987654321")
    gone = cal.expect("pubmsg", lambda e: e.nick == BOT and "987654321" in e.text, since)
    assert "not in memory" in gone.text
    cal.do("privmsg", "#search", "!show nothing")
    usage = cal.expect("pubmsg", lambda e: e.nick == BOT and e.text.startswith("usage"), since)
    assert "!show ID" in usage.text


def test_logfilter_on_a_log_channel(server: ServerProcess, connect: Connect) -> None:
    """#logs-debug streams DEBUG events; !logfilter narrows it for everyone in it
    (with authentication off, anyone may), never past its own level; off: back."""
    eve = connect("eve")
    fay = connect("fay")
    join(eve, "#logs-debug")
    join(fay, "#logs-debug")
    try:
        since = fay.mark()
        eve.do("privmsg", "#logs-debug", "!logfilter service=fsvc")
        now = fay.expect("pubmsg", lambda e: e.nick == BOT and "now streams" in e.text, since)
        assert "level=DEBUG,TRACE" in now.text and "service=fsvc" in now.text
        ingest(
            server,
            json_event("debug", "othersvc", "FILTERMARK 1 other"),
            json_event("debug", "fsvc", "FILTERMARK 2 kept"),
            json_event("info", "fsvc", "FILTERMARK 3 wrong level"),
        )
        fay.expect("pubmsg", lambda e: "FILTERMARK 2" in e.text, since)
        fay.sync()
        shown = [t for t in fay.said_by_bot(since, "#logs-debug") if "FILTERMARK" in t]
        assert len(shown) == 1 and "fsvc" in shown[0]

        since = eve.mark()
        eve.do("privmsg", "#logs-debug", "!logfilter level=ERROR")
        refused = eve.expect("pubmsg", lambda e: e.nick == BOT, since)
        assert refused.text == "#logs-debug streams level=DEBUG,TRACE only"
        for wrong in ("!logfilter bogus", "!logfilter regex=("):
            since = eve.mark()
            eve.do("privmsg", "#logs-debug", wrong)
            error = eve.expect("pubmsg", lambda e: e.nick == BOT, since)
            assert error.text.startswith("error: "), (wrong, error.text)
        # Still filtered as it was.
        ingest(server, json_event("debug", "othersvc", "FILTERMARK 5 still out"))
        ingest(server, json_event("debug", "fsvc", "FILTERMARK 6 still in"))
        fay.expect("pubmsg", lambda e: "FILTERMARK 6" in e.text)
        assert [e for e in fay.seen("pubmsg") if "FILTERMARK 5" in e.text] == []
    finally:
        since = fay.mark()
        eve.do("privmsg", "#logs-debug", "!logfilter off")
        back = fay.expect("pubmsg", lambda e: e.nick == BOT and "now streams" in e.text, since)
    assert back.text == "#logs-debug now streams: level=DEBUG,TRACE"
    ingest(server, json_event("debug", "othersvc", "FILTERMARK 4 all again"))
    fay.expect("pubmsg", lambda e: "FILTERMARK 4" in e.text, since)


def test_logstream_on_and_off_in_own_channel(server: ServerProcess, connect: Connect) -> None:
    gus = connect("gus")  # creates #mine: its operator
    hal = connect("hal")
    join(gus, "#mine")
    join(hal, "#mine")
    join(hal, "#logs-warning")

    since = gus.mark()
    gus.do("privmsg", "#mine", "!logfilter service=x")
    not_yet = gus.expect("pubmsg", lambda e: e.nick == BOT, since)
    assert "does not stream" in not_yet.text
    gus.do("privmsg", BOT, "!logstream on")
    assert "in the channel" in gus.expect("privmsg", lambda e: e.nick == BOT, since).text
    hal.do("privmsg", "#mine", "!logstream on")
    refused = hal.expect("pubmsg", lambda e: e.nick == BOT and "only" in e.text)
    assert refused.text == "only a channel operator may change what #mine streams"

    since = hal.mark()
    gus.do("privmsg", "#mine", "!logstream on level=WARN")
    bot_join = hal.expect("join", lambda e: e.nick == BOT, since)
    assert bot_join.target == "#mine"
    hal.expect("pubmsg", lambda e: e.nick == BOT and e.text == "#mine now streams: level=WARN")
    hal.do("names", "#mine")
    assert "@" + BOT in hal.expect("namreply", since=since).args[2].split()
    ingest(
        server,
        json_event("info", "ssvc", "STREAMMARK 1 info"),
        json_event("warn", "ssvc", "STREAMMARK 2 warn"),
    )
    hal.expect("pubmsg", lambda e: e.target == "#mine" and "STREAMMARK 2" in e.text, since)
    hal.sync()
    assert [t for t in hal.said_by_bot(since, "#mine") if "STREAMMARK 1" in t] == []

    gus.do("privmsg", "#mine", "!logstream sideways")
    usage = gus.expect("pubmsg", lambda e: e.nick == BOT and e.text.startswith("usage"))
    assert "!logstream on" in usage.text

    since = hal.mark()
    gus.do("privmsg", "#mine", "!logstream off")
    left = hal.expect("part", lambda e: e.nick == BOT, since)
    assert left.target == "#mine"
    hal.expect("pubmsg", lambda e: e.text == "#mine no longer streams logs", since)
    ingest(server, json_event("warn", "ssvc", "STREAMMARK 3 after off"))
    # The event reached the log channel; #mine stays quiet.
    hal.expect("pubmsg", lambda e: e.target == "#logs-warning" and "STREAMMARK 3" in e.text)
    hal.sync()
    assert [t for t in hal.said_by_bot(since, "#mine") if "STREAMMARK 3" in t] == []


def test_stats_count_irc_clients_and_lines(server: ServerProcess, connect: Connect) -> None:
    before = server.stats()
    ida = connect("ida")
    join(ida, "#counted")
    stats = wait_for(
        "IrcClients to count ida",
        server.stats,
        lambda s: s["IrcClients"] >= 1 and s["IrcLinesSent"] > before["IrcLinesSent"],
    )
    assert "IrcSkipped" in stats
    assert irc_metric(server.ports["http"], "logcaster_irc_clients") >= 1
