"""The IRC server (SPEC §7) against jaraco's `irc` library: registration, CAP,
nick rules, PING/PONG, and odd arguments (RFC 1459/2812, modern.ircdocs.horse).
The client harness and the module's server: tests/irc_client_helpers.py."""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Iterator

import pytest

from logcaster.testing import ServerProcess, start_server, wait_for
from tests.irc_client_helpers import (
    ENV,
    SERVER,
    Client,
    Connect,
    connecting,
    join,
    serving,
)
from tests.irc_helpers import MAX_LINE, RawIrc, command_of


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    yield from serving()


@pytest.fixture
def connect(server: ServerProcess) -> Iterator[Connect]:
    yield from connecting(server)


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


# --- found by a fault probe ---------------------------------------------------------


def test_lines_left_when_a_client_is_gone_are_not_handled(server: ServerProcess) -> None:
    """A client whose reading was paused (input rate) with a JOIN still buffered
    resets its connection: the JOIN must not run for a client the server forgot
    (it would leave a member no one can see or remove)."""
    ghost = RawIrc(server.ports["irc"])
    ghost.register("ghost")
    burst = b"".join([b"X" * 600 + b"\r\n"] * 150 + [b"PING x\r\n"] * 45 + [b"JOIN #ghosts\r\n"])
    ghost.sock.sendall(burst)
    time.sleep(0.03)
    ghost.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ghost.close()
    with RawIrc(server.ports["irc"]) as watcher:
        watcher.register("watcher")
        wait_for("the ghost gone", lambda: server.stats()["IrcClients"], lambda n: n == 1)
        time.sleep(1.0)  # its reading would have resumed by now
        watcher.send("NAMES #ghosts")
        end = watcher.expect(lambda line: command_of(line) == "366", "366")
        assert "#ghosts" in end
        assert not [x for x in watcher.lines() if command_of(x) == "353" and "ghost" in x]


def test_what_echoes_a_long_or_wide_argument_still_fits(server: ServerProcess) -> None:
    """Lengths are in bytes: a 500-character unknown command, a channel named in
    4-byte characters with a 300-byte topic of 3-byte ones, and every reply to
    them fits 512 bytes and comes, to the end of the list."""
    with RawIrc(server.ports["irc"]) as raw:
        raw.register("wide")
        raw.send("A" * 500)
        raw.expect(lambda line: command_of(line) == "421", "421")
        raw.send(
            "JOIN #" + "\U0001f600" * 12, "TOPIC #" + "\U0001f600" * 12 + " :" + "\u65e5" * 100
        )
        raw.expect(lambda line: command_of(line) == "TOPIC", "the topic set")
        raw.send("JOIN #" + "\U0001f600" * 49)  # 197 bytes: over CHANNELLEN
        raw.expect(lambda line: command_of(line) == "403", "403 for a name over 50 bytes")
        raw.send("LIST", "PRIVMSG #" + "x" * 480 + " :hi")
        raw.expect(lambda line: command_of(line) == "323", "the end of LIST")
        raw.expect(lambda line: command_of(line) == "403", "403 for a long unknown channel")
        raw.send("PING :alive")
        raw.expect(lambda line: "alive" in line, "still connected")
        assert all(len(line.encode()) + 2 <= MAX_LINE for line in raw.lines())
