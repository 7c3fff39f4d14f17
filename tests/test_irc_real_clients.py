"""Real IRC clients against the IRC server (SPEC §7): irssi and WeeChat, from Debian's packages.

irssi runs in a private tmux server (a socket name of its own), with a home
directory, config, autolog and raw protocol log in the test's temporary
directory; what it shows is read from its screen (`tmux capture-pane`) and its
logs. WeeChat runs headless (`weechat-headless`) with its own `--dir`: commands
go in through its FIFO plugin's pipe, and what it received is read from its
logger plugin's files. Neither is told of any server but the one under test, on
127.0.0.1 and an ephemeral port.

Each client connects (irssi opens with `CAP LS 302`, WeeChat too), registers,
joins #logs-error, gets an ERROR event sent over TCP ingest within a second,
asks LogBot `!query level=ERROR limit=2` in the channel and sees its answer,
then quits; the server counts it gone. With authentication on, the token is the
connection password (irssi: `/connect HOST PORT TOKEN`, as it has no `-password`
option; WeeChat: `/server add … -password=TOKEN`), and a client without one (or
with a token that may not read logs) is refused with 464 and closed, as the
client shows.

What the clients showed is kept in tests/artifacts/ (gitignored, or
$LOGCASTER_ARTIFACTS) as `irc-<test>-<file>.txt`. scripts/test-deps installs
the clients; without them these tests fail under CI and are skipped elsewhere.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from logcaster.testing import ServerProcess, parse_stats, start_server, wait_for
from tests.irc_real_helpers import (
    CHANNEL,
    DELIVERY_S,
    QUERY,
    STEP_S,
    ingest_lines,
    irssi_in_tmux,
    lines_after,
    make_events,
    read_text,
    wait_text,
    weechat_headless,
)
from tests.security_helpers import AuthServer, start_auth_server

# --- servers --------------------------------------------------------------------------


@pytest.fixture
def irc_server() -> Iterator[ServerProcess]:
    """A server with the IRC listener on an ephemeral port."""
    server = start_server("-I", "0")
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    """A server with authentication on and the IRC listener; tokens of every role."""
    server = start_auth_server(tmp_path_factory.mktemp("auth") / "data", "-I", "0")
    try:
        yield server
    finally:
        server.server.kill()


def _irc_clients(server: ServerProcess) -> float:
    return server.stats()["IrcClients"]


def _auth_irc_clients(auth: AuthServer) -> float:
    return parse_stats(auth.query("STATS", auth.tokens["viewer"]))["IrcClients"]


# --- the tests ------------------------------------------------------------------------


def test_irssi_joins_gets_errors_live_and_asks_logbot(
    irc_server: ServerProcess, tmp_path: Path
) -> None:
    server, events = irc_server, make_events()
    ingest_lines(server.ingest_port, events.earlier)
    server.wait_total(2)
    port = server.ports["irc"]
    raw = tmp_path / "raw.log"
    with irssi_in_tmux(tmp_path, port, "irssi") as irssi:
        irssi.type(f"/connect -rawlog {raw} 127.0.0.1 {port}")
        status = wait_text("irssi registered", irssi.status, "End of /MOTD command.")
        assert "Welcome to the LogCaster IRC Network irssitest!~irssitest@127.0.0.1" in status
        sent = [line[3:] for line in read_text(raw).splitlines() if line.startswith("<< ")]
        assert sent[0] == "CAP LS 302", sent  # a modern client asks for capabilities first
        got = wait_text("CAP in the raw log", partial(read_text, raw), "CAP END")
        assert ">> :logcaster CAP * LS :" in got
        assert ">> :logcaster 001 irssitest :Welcome" in got
        assert wait_for("IrcClients", lambda: _irc_clients(server), lambda n: n == 1) == 1

        irssi.type(f"/join {CHANNEL}")
        joined = wait_text("irssi in the channel", irssi.channel_log, "Total of 2 nicks")
        assert f"irssitest [~irssitest@127.0.0.1] has joined {CHANNEL}" in joined
        assert "[@LogBot] [ irssitest]" in joined  # LogBot holds the channel

        start = time.monotonic()
        ingest_lines(server.ingest_port, events.live)
        shown = wait_text("the live event", irssi.channel_log, f"live-{events.tag}", DELIVERY_S)
        took = time.monotonic() - start
        line = next(x for x in shown.splitlines() if f"live-{events.tag}" in x)
        assert re.search(
            rf"<@LogBot> 10:00:01 ERROR \[payment-api\] charge failed live-{events.tag} #\d+$",
            line,
        ), line
        assert f"warn-{events.tag}" not in shown  # a WARN is not #logs-error's
        wait_text("the live event on screen", irssi.screen, f"live-{events.tag}", DELIVERY_S)
        assert took < DELIVERY_S

        irssi.type(QUERY)
        answer = wait_text("LogBot's answer", irssi.channel_log, "... 1 more")
        asked = f"< irssitest> {QUERY}"
        events.check_answer(lines_after(answer, asked))
        screen = wait_text("the answer on screen", irssi.screen, "... 1 more")
        assert "<@LogBot> FOUND: 3 matches" in screen
        events.check_answer(lines_after(screen, asked))
        assert f"PRIVMSG {CHANNEL} :{QUERY}" in read_text(raw)
        # irssi's channel sync (MODE, WHO, MODE b): every query answered, or it never syncs.
        wait_text("irssi's channel sync", irssi.channel_log, f"Join to {CHANNEL} was synced")
        raw_text = read_text(raw)
        for reply in (" 324 irssitest #logs-error +nt", " 315 irssitest ", " 368 irssitest "):
            assert reply in raw_text, raw_text
        errors = re.findall(r"^>> :logcaster ([45]\d\d) .*$", raw_text, re.MULTILINE)
        assert errors == ["451"], raw_text  # only for irssi's `JOIN :` probe before CAP END

        irssi.type("/quit done testing")
        wait_for("irssi to exit", irssi.running, lambda up: not up, timeout=STEP_S)
        assert "<< QUIT :done testing" in read_text(raw)
        assert wait_for("IrcClients", lambda: _irc_clients(server), lambda n: n == 0) == 0
        assert "Log closed" in irssi.channel_log()


def test_weechat_joins_gets_errors_live_and_asks_logbot(
    irc_server: ServerProcess, tmp_path: Path
) -> None:
    server, events = irc_server, make_events()
    ingest_lines(server.ingest_port, events.earlier)
    server.wait_total(2)
    port = server.ports["irc"]
    with weechat_headless(tmp_path, "weechat") as weechat:
        weechat.start(
            f"/server add lc 127.0.0.1/{port} -notls -nicks=weetest -username=weetest"
            " -realname=WeeChat_under_test",
            "/connect lc",
        )
        server_log = partial(weechat.log, "irc.server.lc")
        said = wait_text("WeeChat registered", server_log, "End of /MOTD command.")
        assert "irc: client capability, server supports: " in said  # CAP LS, answered empty
        assert "Welcome to the LogCaster IRC Network weetest!~weetest@127.0.0.1" in said
        assert wait_for("IrcClients", lambda: _irc_clients(server), lambda n: n == 1) == 1

        weechat.command(f"/join {CHANNEL}", "irc.server.lc")
        channel_log = partial(weechat.log, f"irc.lc.{CHANNEL}")
        joined = wait_text("WeeChat in the channel", channel_log, f"Channel {CHANNEL}: 2 nicks")
        assert f"weetest (~weetest@127.0.0.1) has joined {CHANNEL}" in joined
        assert "(1 op, 1 normal)" in joined

        start = time.monotonic()
        ingest_lines(server.ingest_port, events.live)
        shown = wait_text("the live event", channel_log, f"live-{events.tag}", DELIVERY_S)
        took = time.monotonic() - start
        line = next(x for x in shown.splitlines() if f"live-{events.tag}" in x)
        assert re.search(
            rf"\t@LogBot\t10:00:01 ERROR \[payment-api\] charge failed live-{events.tag} #\d+$",
            line,
        ), line
        assert f"warn-{events.tag}" not in shown
        assert took < DELIVERY_S

        weechat.command(QUERY, f"irc.lc.{CHANNEL}")
        answer = wait_text("LogBot's answer", channel_log, "... 1 more")
        events.check_answer(lines_after(answer, f"\tweetest\t{QUERY}"))
        # WeeChat asks the channel's modes on joining (MODE #logs-error: 324, 329).
        wait_text("the channel's modes", channel_log, "Channel created on")
        for text in (server_log(), channel_log()):
            assert "=!=" not in text, text  # no error numeric, nothing WeeChat objected to

        weechat.command("/quit done testing")
        wait_for("WeeChat to exit", weechat.running, lambda up: not up, timeout=STEP_S)
        assert weechat.proc is not None and weechat.proc.returncode == 0
        assert wait_for("IrcClients", lambda: _irc_clients(server), lambda n: n == 0) == 0


def test_irssi_with_authentication_needs_a_reading_token(auth: AuthServer, tmp_path: Path) -> None:
    port = auth.server.ports["irc"]
    viewer = auth.tokens["viewer"]
    with irssi_in_tmux(tmp_path, port, "irssi-auth") as irssi:
        # No password: 464, then the server closes the link.
        nopass = tmp_path / "raw-nopass.log"
        irssi.type(f"/connect -rawlog {nopass} 127.0.0.1 {port}")
        status = wait_text("irssi refused", irssi.status, "Closing Link")
        raw = wait_text("the refusal in the raw log", partial(read_text, nopass), "Closing Link")
        assert ">> :logcaster 464 irssitest :Password incorrect" in raw, raw
        assert ">> ERROR :Closing Link: 127.0.0.1 (Password incorrect)" in raw, raw
        assert ":logcaster 001" not in raw
        assert "Password incorrect" in status
        assert "Password incorrect" in irssi.screen()

        # A token that may send logs but not read them: refused the same way. (irssi
        # takes the password after the port: it has no `/connect -password`.)
        ingest, with_ingest = auth.tokens["ingest"], tmp_path / "raw-ingest.log"
        irssi.type(f"/connect -rawlog {with_ingest} 127.0.0.1 {port} {ingest}")
        raw = wait_text("ingest token refused", partial(read_text, with_ingest), "Closing Link")
        assert f"<< PASS {ingest}" in raw
        assert ">> :logcaster 464 irssitest :Password incorrect" in raw, raw
        assert ":logcaster 001" not in raw

        # A viewer's token: in, and the channel streams to it.
        with_viewer = tmp_path / "raw-viewer.log"
        irssi.type(f"/connect -rawlog {with_viewer} 127.0.0.1 {port} {viewer}")
        raw = wait_text(
            "registered with a token", partial(read_text, with_viewer), " 376 irssitest"
        )
        assert f"<< PASS {viewer}" in raw
        assert ">> :logcaster 001 irssitest :Welcome" in raw
        irssi.type(f"/join {CHANNEL}")
        wait_text("irssi in the channel", irssi.channel_log, "Total of 2 nicks")
        tag = secrets.token_hex(4)
        ingest_lines(
            auth.server.ingest_port,
            [f"2026-12-05T10:00:00Z ERROR [payment-api] behind a token {tag}"],
            auth.tokens["ingest"],
        )
        wait_text("the event", irssi.channel_log, tag, DELIVERY_S)
        irssi.type("/quit")
        wait_for("irssi to exit", irssi.running, lambda up: not up, timeout=STEP_S)
    assert wait_for("IrcClients", partial(_auth_irc_clients, auth), lambda n: n == 0) == 0


def test_weechat_with_authentication_uses_the_token_as_password(
    auth: AuthServer, tmp_path: Path
) -> None:
    port = auth.server.ports["irc"]
    viewer = auth.tokens["viewer"]
    with weechat_headless(tmp_path, "weechat-auth") as weechat:
        weechat.start(
            f"/server add nopass 127.0.0.1/{port} -notls -nicks=weetest -username=weetest"
            " -noautoreconnect",
            f"/server add lc 127.0.0.1/{port} -notls -nicks=weetest2 -username=weetest"
            f" -password={viewer}",
            "/connect nopass",
            "/connect lc",
        )
        refused = wait_text(
            "WeeChat refused", partial(weechat.log, "irc.server.nopass"), "Closing Link"
        )
        assert "Password incorrect" in refused
        assert "Welcome to the LogCaster" not in refused
        said = wait_text(
            "WeeChat registered", partial(weechat.log, "irc.server.lc"), "End of /MOTD command."
        )
        assert "Welcome to the LogCaster IRC Network weetest2!" in said
        weechat.command(f"/join {CHANNEL}", "irc.server.lc")
        channel_log = partial(weechat.log, f"irc.lc.{CHANNEL}")
        wait_text("WeeChat in the channel", channel_log, f"Channel {CHANNEL}: 2 nicks")
        tag = secrets.token_hex(4)
        ingest_lines(
            auth.server.ingest_port,
            [f"2026-12-05T10:00:00Z ERROR [payment-api] behind a token {tag}"],
            auth.tokens["ingest"],
        )
        wait_text("the event", channel_log, tag, DELIVERY_S)
        weechat.command("/quit")
        wait_for("WeeChat to exit", weechat.running, lambda up: not up, timeout=STEP_S)
    assert wait_for("IrcClients", partial(_auth_irc_clients, auth), lambda n: n == 0) == 0
