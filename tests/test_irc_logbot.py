"""LogBot against jaraco's `irc` library: !help, !stats, !query, !show,
!logfilter, !logstream, and the IRC counters in STATS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from logcaster.testing import ServerProcess, wait_for
from tests.irc_client_helpers import (
    BOT,
    Connect,
    connecting,
    ingest,
    join,
    json_event,
    serving,
)
from tests.irc_helpers import irc_metric


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    yield from serving()


@pytest.fixture
def connect(server: ServerProcess) -> Iterator[Connect]:
    yield from connecting(server)


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

    # The first answer reached dee, so the server has relayed it to cal too; cal's
    # PING after it makes sure cal recorded it before the mark (else it is counted
    # as part of the second answer).
    cal.sync()
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
