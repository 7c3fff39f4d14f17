"""The IRC line parser and builder (frontends/irc/message.py), and IRC text (format.py).

Cases follow the message grammar of modern.ircdocs.horse and the IRCv3 tags
spec: tags with escapes, sources, trailing parameters (empty, with spaces,
with colons), runs of spaces. `irctokens`, a parser nobody here wrote, is
the reference for generated lines.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from irctokens.line import tokenise

from logcaster.event import Event
from logcaster.frontends.irc.format import MARK, body_lines, event_line, fit, split
from logcaster.frontends.irc.message import MAX_LINE_BYTES, ParseError, build, parse, too_long

CASES = [
    ("PING", None, "PING", []),
    ("ping :x", None, "PING", ["x"]),
    (
        ":irc.example.com 001 alice :Welcome home",
        "irc.example.com",
        "001",
        ["alice", "Welcome home"],
    ),
    ("PRIVMSG #chan :", None, "PRIVMSG", ["#chan", ""]),  # empty trailing is a parameter
    ("PRIVMSG #chan ::-)", None, "PRIVMSG", ["#chan", ":-)"]),
    ("PRIVMSG #chan :a  b ", None, "PRIVMSG", ["#chan", "a  b "]),
    ("USER  alice   0 *  :Alice A", None, "USER", ["alice", "0", "*", "Alice A"]),
    ("JOIN #a,#b key", None, "JOIN", ["#a,#b", "key"]),
    (":n!u@h QUIT", "n!u@h", "QUIT", []),
    ("CAP LS 302\r\n", None, "CAP", ["LS", "302"]),
    ("NICK bob\n", None, "NICK", ["bob"]),
]


@pytest.mark.parametrize(("line", "source", "command", "params"), CASES)
def test_parse(line: str, source: str | None, command: str, params: list[str]) -> None:
    msg = parse(line)
    assert (msg.source, msg.command, msg.params) == (source, command, params)


def test_tags_and_their_escapes() -> None:
    msg = parse(r"@id=234AB;+example.com/k=a\:b\sc\\d\r\n;empty=;bare :n!u@h PRIVMSG #c :hi")
    assert msg.tags == {
        "id": "234AB",
        "+example.com/k": "a;b c\\d\r\n",
        "empty": "",
        "bare": "",
    }
    assert (msg.source, msg.command, msg.params) == ("n!u@h", "PRIVMSG", ["#c", "hi"])
    assert parse(r"@k=a\b\ CMD").tags == {"k": "ab"}  # unknown escape: the char; lone \ dropped


@pytest.mark.parametrize("line", ["", "   ", ":only.a.source", "@tag=1", "12 x", "PRIV_MSG x"])
def test_lines_without_a_command_are_refused(line: str) -> None:
    with pytest.raises(ParseError):
        parse(line)


def test_build_puts_a_colon_only_where_needed() -> None:
    assert build("srv", "001", "alice", "Welcome home") == b":srv 001 alice :Welcome home\r\n"
    assert build(None, "PING", "srv") == b"PING srv\r\n"
    assert build("srv", "CAP", "*", "LS", "") == b":srv CAP * LS :\r\n"
    assert build("n!u@h", "PRIVMSG", "#c", ":-)") == b":n!u@h PRIVMSG #c ::-)\r\n"


def test_build_cuts_what_would_be_too_long() -> None:
    line = build("srv", "PRIVMSG", "#c", "x" * 600)
    assert len(line) == MAX_LINE_BYTES - 1 and line.endswith("…\r\n".encode())
    echoed = build("srv", "421", "nick", "A" * 600, "Unknown command")  # an echoed argument
    assert len(echoed) <= MAX_LINE_BYTES and echoed.endswith(b" :Unknown command\r\n")
    wide = build("srv", "332", "nick", "#" + "\U0001f600" * 49, "\u65e5" * 300)  # 4 and 3 bytes
    assert len(wide) <= MAX_LINE_BYTES
    wide.decode()  # cut at character boundaries


def test_build_refuses_what_would_break_the_protocol() -> None:
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        build("srv", "PRIVMSG", "#c", "two\r\nPRIVMSG #c :lines")
    with pytest.raises(ValueError, match="one word"):
        build("srv", "MODE", "#c has space", "+o")
    assert len(build("srv", "PRIVMSG", "#c", "x" * (MAX_LINE_BYTES - 18))) == MAX_LINE_BYTES


WORD = st.text(
    st.characters(blacklist_characters=" \r\n\0:", blacklist_categories=["Cs"]), min_size=1
)
TEXT = st.text(st.characters(blacklist_characters="\r\n\0", blacklist_categories=["Cs"]))


@given(
    source=st.none() | WORD,
    command=st.sampled_from(["PRIVMSG", "NOTICE", "JOIN", "001", "353", "MODE"]),
    middle=st.lists(WORD, max_size=4),
    trailing=st.none() | TEXT,
)
def test_parse_agrees_with_irctokens(
    source: str | None, command: str, middle: list[str], trailing: str | None
) -> None:
    params = [*middle, trailing] if trailing is not None else middle
    line = (f":{source} " if source else "") + command
    for p in middle:
        line += " " + p
    if trailing is not None:
        line += " :" + trailing
    ours = parse(line)
    theirs = tokenise(line)
    assert (ours.source, ours.command, ours.params) == (
        theirs.source,
        theirs.command,
        theirs.params,
    )
    assert ours.params == params
    # What build makes, both read back the same.
    if params and all(params[:-1]) and len(line.encode()) < 400:
        built = build(source, command, *params).decode()
        assert parse(built).params == tokenise(built.rstrip("\r\n")).params == params


# --- format.py ----------------------------------------------------------------------


def _event(body: str, **kw: object) -> Event:
    defaults: dict[str, object] = {
        "id": 42,
        "received_at": 0.0,
        "source": "tcp",
        "body": body,
        "message": body.partition("\n")[0],
        "ts": 1_796_000_000.0,
        "level": "ERROR",
        "service": "payment-api",
    }
    defaults.update(kw)
    return Event(**defaults)  # type: ignore[arg-type]


def test_event_line_is_compact_and_says_how_to_see_the_rest() -> None:
    ev = _event(
        "charge failed\n  at Pay.charge(Pay.java:10)\n  at Main.run(Main.java:3)",
        fields={"request_id": "req-7"},
    )
    line = event_line(ev, colors=False)
    assert line.endswith("ERROR payment-api charge failed [req=req-7] (+2 lines: !show 42)")
    assert line[:8].count(":") == 2  # HH:MM:SS first
    coloured = event_line(ev, colors=True)
    assert "\x0304ERROR\x03" in coloured


def test_event_text_cannot_forge_lines_or_colour_the_client() -> None:
    ev = _event("boom \x0304red\x02 \x1b[31m \u202e", level="WARN", service="a\rb")
    line = event_line(ev, colors=True)
    body = line.split("\x0307WARN\x03", 1)[1]  # after the server's own colour code
    assert not any(c in body for c in "\x03\x02\x1b\r\n\u202e")
    assert "\\x03" in body and "\\x1b" in body and "\\u202e" in body


def test_fit_and_split_cut_at_character_boundaries() -> None:
    text = "é" * 300  # two bytes each
    cut = fit(text, 101)
    assert cut.endswith(MARK) and len(cut.encode()) <= 101
    pieces = split(text, 101)
    assert all(len(p.encode()) <= 101 for p in pieces)
    assert "".join(pieces) == text
    assert fit("short", 10) == "short"


def test_body_lines_are_bounded() -> None:
    ev = _event("\n".join(f"line {i} " + "x" * 50 for i in range(30)))
    lines, left = body_lines(ev, 40, 10)
    assert len(lines) == 10 and all(len(x.encode()) <= 40 for x in lines)
    assert left > 0
    whole, none_left = body_lines(ev, 400, 100)
    assert len(whole) == 30 and none_left == 0


def test_input_limits_count_tags_apart() -> None:
    assert not too_long(b"PRIVMSG #c :" + b"x" * 498)  # 510 bytes
    assert not too_long(b"PRIVMSG #c :" + b"x" * 498 + b"\r")
    assert too_long(b"PRIVMSG #c :" + b"x" * 499)
    tags = b"@k=" + b"v" * 8000
    assert not too_long(tags + b" PRIVMSG #c :" + b"x" * 498)
    assert too_long(b"@k=" + b"v" * 8190 + b" PING x")
