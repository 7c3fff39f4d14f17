"""What IRC clients are sent: the 512-byte limit, over-long input (417), event
text with control characters shown escaped, and each log channel's levels."""

from __future__ import annotations

import re
from collections.abc import Iterator

import orjson
import pytest

from logcaster.testing import ServerProcess, wait_for
from tests.irc_client_helpers import (
    BOT,
    CONTROLS,
    LEVEL_COLOUR,
    SERVER,
    UNSAFE,
    Connect,
    connecting,
    ingest,
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
        # The message is what is cut: the id `!show` takes stays at the end.
        assert shown.startswith(f":{BOT}!") and re.search(r"-… #\d+$", shown)
        got = reader.expect("pubmsg", lambda e: "LONGLINE" in e.text)
        assert got.nick == BOT and got.target == "#logs-error" and "-… #" in got.text
        assert len(got.text.encode()) < 500
        # Cut at a character's boundary: valid UTF-8 (the library decodes strictly).
        raw.expect(lambda line: "LONGEMOJI" in line, "the long emoji event")
        frame = next(f for f in raw.frames if b"LONGEMOJI" in f)
        assert re.search("\U0001f600… #\\d+\r\n$", frame.decode("utf-8"))
        assert "\U0001f600… #" in reader.expect("pubmsg", lambda e: "LONGEMOJI" in e.text).text

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
