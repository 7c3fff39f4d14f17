"""parsing/extract.py against `parse_event` on generated texts: hypothesis texts
built around the line shapes the fast path accepts, with the edits that must
push an event to the full parser (duplicate keys, pairs later in the body,
escapes, bad UTF-8), syslog header variants, and receive times equal to an
event's own. tests/test_store_extract.py holds the real-data tests and helpers.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logcaster.parsing.extract import Extractor
from logcaster.parsing.parse import parse_event
from logcaster.segments.blocks import encode_payload
from tests.test_store_extract import RECEIVED, assert_parity

# ---------------------------------------------------------------------------
# Hypothesis: the shapes the fast path accepts, and edits that must not fool it

_LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "WARNING", "Info", "NOTE"]
_STAMPS = [
    "2026-01-19 08:00:00.003",
    "2026-01-19 23:59:59.999",
    "1970-01-01 00:00:00.000",  # 0.0: parse_event keeps the receive time
    "2024-02-29 12:00:00.500",
    "2026-02-29 12:00:00.500",  # no such day
    "2026-13-01 00:00:00.000",
    "2026-01-20 00:00:00.000",  # equals the receive time below
    "9999-12-31 23:59:59.999",
]
_TRICKY = [
    "",
    " service=billing",
    " ts=2026-01-18T00:00:00.000Z",
    " time=2026-01-18T00:00:00Z",
    " timestamp=2026-01-18 00:00:01",
    "\\nts=2026-01-18T00:00:00Z",
    " level=error",
    '"quoted"',
    "\\",
    "\\n",
    "\n",
    "\r",
    "\r\n",
    "\n#comment",
    "\nservice=late",
    "é",
    "\u00a0",
    "\u2028",
    " a=1,b=2",
    ' msg="x y"',
    "{",
    "}",
    ":",
    "/",
    "[pid]",
    ",service=x",
    ";level=error",
    " hits=3",
    " xts=1",
    "\\nservice=y",
    '"service":"s"',
]
# Values of the shapes real shippers write (Go slog text, zap JSON, access lines)
_MSGS = ['"x y"', "hello", '"a service=b"', '"q\\"x"', "a,b", "'s q'", '""', "x=y", "é"]
_ZAP_KEYS = ["msg", "ts", "level", "service", "logger", "caller", "time", "service.name"]
_IPS = ["10.0.0.1", "192.168.100.200", "1.2.3", "1234.1.1.1", "10.0.0.1:80", "::1"]
_PATHS = ["/x", "/s?level=error", "/s?ts=1", "/a?service=x&b=1", "/q?hits=3", "/t?time=1"]
# Access lines' times, good and bad (parse._parse_access_time decides for the parser).
_ACCESS_TIMES = [
    "19/Jan/2026:08:00:00 +0000",
    "10/Oct/2000:13:55:36 -0700",
    "29/Feb/2024:23:59:59 +0530",
    "31/Dec/2025:23:59:59 -1200",
    "29/Feb/2026:00:00:00 +0000",
    "31/Apr/2026:00:00:00 +0000",
    "19/Foo/2026:08:00:00 +0000",
    "19/jan/2026:08:00:00 +0000",
    "19/Jan/2026:24:00:00 +0000",
    "19/Jan/2026:08:60:00 +0000",
    "19/Jan/2026:08:00:60 +0000",
    "19/Jan/1969:08:00:00 +0000",
    "01/Jan/1970:00:00:00 +0000",
    "19/Jan/2026:08:00:00 +2400",
    "19/Jan/2026:08:00:00 +0060",
    "19/Jan/2026:08:00:00 0000",
    "19/Jan/2026:08:00:00",
    "9/Jan/2026:08:00:00 +0000",
    "19/Jan/9999:23:59:59 -1400",
    "20/Jan/2026:00:00:00 +0000",  # the receive time exactly
]


# BSD-header variants (parsing/syslog.py): the fast path takes only the
# classic `Mmm dd hh:mm:ss host app[pid]:` and must leave every other to the parser.
_BSD_TIMES = [
    "Jan 19 08:00:00 ",
    "Jan  9 08:00:00 ",
    "Jan 9 08:00:00 ",
    "JAN 19 08:00:00 ",
    "jan 19 08:00:00 ",
    "Jan 19 2025 08:00:00: ",
    "Jan 19 08:00:00.250: ",
    "2026-01-19T08:00:00.003+02:00 ",
    "2026-01-19T08:00:00Z ",
    "12: *Jan 19 08:00:00.123: ",
    " Jan 19 08:00:00 ",
    "Feb 30 08:00:00 ",
    "Jan 19 08:00:00",
]
_BSD_HOSTS = ["host ", "10.0.0.99 ", "fe80::1 ", "0002:: ", "- ", "a/b@c ", "h{x} ", "", "h  "]
_BSD_TAGS = [
    "SVC[1]:",
    "SVC:",
    "SVC[1]",
    "SVC[-]:",
    "SVC:x",
    "%LINK-3-UPDOWN:",
    "Use the BFG!",
    '{"k": 1}',
    "k=v:",
    "a]b:",
    "run-parts(/etc/cron.daily)[9]:",
    "",
]


@st.composite
def event_text(draw: st.DrawFn) -> bytes:
    stamp = draw(st.sampled_from(_STAMPS))
    iso = stamp.replace(" ", "T") + "Z"
    lvl = draw(st.sampled_from(_LEVELS))
    svc = draw(st.sampled_from(["api", "payment-api", "a.b_c", "INFO", "-", "x" * 45, "sv€"]))
    tail = "".join(draw(st.lists(st.sampled_from(_TRICKY), max_size=3)))
    word = draw(st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=6))
    shape = draw(st.integers(0, 13))
    if shape == 0:
        text = f"[{lvl}] {stamp} {svc}/1.2.{draw(st.integers(0, 9))} {word}{tail}"
    elif shape == 1:
        keys = draw(
            st.lists(
                st.sampled_from(["msg", "ts", "time", "timestamp", "level", "service", "a_b"]),
                max_size=3,
            )
        )
        extra = "".join(f',"{k}":{json.dumps(word)}' for k in keys)
        text = f'{{"timestamp":"{iso}","level":"{lvl.lower()}","service":"{svc}"{extra}}}{tail}'
    elif shape == 2:
        text = f"ts={iso} level={lvl.lower()} service={svc} {word}{tail}"
    elif shape == 3:
        pri = draw(st.integers(0, 999))
        text = f"<{pri}>1 {iso} host {svc} 12 ID{tail} - {word}{tail}"
    elif shape == 4:
        pri = draw(st.integers(0, 999))
        day = draw(st.sampled_from(["Jan 19", "Feb 29", "Dec 31", "Jan  1", "Foo 19"]))
        text = f"<{pri}>{day} {stamp[11:19]} host {svc}[1]:{tail} {word}"
    elif shape == 5:
        text = f"{stamp[:19]} {lvl}{draw(st.sampled_from(['', ':']))} {word}{tail}"
    elif shape == 8:  # the BSD header as senders really write it
        bsd_pri = draw(st.sampled_from(["13", "0", "191", "192", "013", "00", "7", "999"]))
        when = draw(st.sampled_from(_BSD_TIMES))
        host = draw(st.sampled_from(_BSD_HOSTS))
        tag = draw(st.sampled_from(_BSD_TAGS)).replace("SVC", svc)
        text = f"<{bsd_pri}>{when}{host}{tag} {word}{tail}"
    elif shape == 6:
        text = f"#{lvl} {word}{tail}"
    elif shape == 7:  # the simulator's Python-style header: no time of its own
        ver = draw(st.sampled_from(["v1.2", "1", "x1", "v", "2:3"]))
        sep = draw(st.sampled_from([": ", ":  ", " ", ":"]))
        text = f"{lvl}{sep}{svc}/{ver} pod/p-1 {word}{tail}"
    elif shape == 9:  # Go slog's text handler
        msg = draw(st.sampled_from(_MSGS))
        text = f"time={iso} level={lvl} msg={msg} service={svc} {word}{tail}"
    elif shape == 10:  # zap-style JSON
        keys = draw(st.lists(st.sampled_from(_ZAP_KEYS), max_size=3))
        value = draw(st.sampled_from([word, *_MSGS]))
        extra = "".join(f',"{k}":{json.dumps(value)}' for k in keys)
        text = f'{{"level":"{lvl.lower()}","ts":"{iso}"{extra}}}{tail}'
    elif shape == 11:  # an nginx/Apache access line
        ip, path = draw(st.sampled_from(_IPS)), draw(st.sampled_from(_PATHS))
        user = draw(st.sampled_from(["-", "frank", "a b", "", "[x", "u" * 40]))
        stamp = draw(st.sampled_from(_ACCESS_TIMES))
        text = f'{ip} - {user} [{stamp}] "GET {path} HTTP/1.1" 200 5{tail}'
    else:
        text = f"{word}{tail}"
    raw = text.encode()
    if draw(st.integers(0, 7)) == 0:  # bytes that are not UTF-8, anywhere
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xe2\x82", b"\x00"])) + raw[at:]
    return raw


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    texts=st.lists(event_text() | st.binary(max_size=40), min_size=1, max_size=25),
    received=st.sampled_from([RECEIVED, 1768809600.003, 1768780800.003, 0.0]),
)
def test_parity_on_generated_texts(texts: list[bytes], received: float) -> None:
    # 1768809600.003 is 2026-01-19T05:20:00.003Z ... and 1768780800.003 the
    # 2026-01-19 00:00:00.003 stamp's own time: a received time equal to an event's.
    x = Extractor()
    fields = x.extract(encode_payload(texts), received)
    assert_parity(x, texts, fields, [received] * len(texts))
    again = x.extract_texts(texts, received)
    assert again.ts.tobytes() == fields.ts.tobytes()


def test_parity_on_syslog_variants() -> None:
    """Every BSD/RFC 5424 variant the parser reads (docs/parsing.md, "Syslog"):
    the classic shapes stay on the fast path, the others fall back."""
    classic = [
        b"<13>Jan 19 08:00:00 host app[12]: fast",
        b"<191>Jan  9 08:00:00 10.0.0.99 %LINK-3-UPDOWN: fast, Cisco tag behind a host",
        b"<0>Jan 19 08:00:00 - app: fast, a nil host",
        b"<14>1 2026-01-19T08:00:00.003Z host app 12 - - fast",
    ]
    variants = [
        b"<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!",
        b"<13>Feb  5 17:32:18 fe80::1 app[3]: an IPv6 host",
        b"<13>Feb  5 17:32:18 0002:: app: an IPv6 host",
        b"<7>2006-11-10T10:43:21.156+02:00 host prog[1]: RFC 3339 in a BSD header",
        b"<13>Mar 7 10:00:00 host app: unpadded day",
        b"<13>NOV 22 10:00:00 host app: upper-case month",
        b"<189>Apr 15 2007 21:28:13: %LINK-3-UPDOWN: Interface Gi0/1, changed state to up",
        b"<189>52: *Mar  1 00:00:50.123: %SYS-5-CONFIG_I: Configured from console",
        b"<13>Feb  5 17:32:18 host prog[77] a tag without a colon",
        b"<13>Feb  5 17:32:18 host {not a tag}: x",
        b"<192>Jan 19 08:00:00 host app[12]: invalid PRI",
        b"<013>Jan 19 08:00:00 host app[12]: leading zero",
        b"<999>1 2026-01-19T08:00:00.003Z host app 12 - - invalid PRI",
        b"<1a>Jan 19 08:00:00 host app: not a PRI level=error service=s",
        rb'<14>1 2026-01-19T08:00:00.003Z h app - - [a@1 k="\\ \"q\" \]"] escapes',
    ]
    x = Extractor()
    for received in (RECEIVED, 1768809600.003):
        fields = x.extract(encode_payload(classic + variants), received)
        assert_parity(x, classic + variants, fields, [received] * len(classic + variants))
    # (1768809600.003 is the RFC 5424 line's own time: that one falls back by design)
    assert x.extract(encode_payload(classic), RECEIVED).fallback == 0


def test_received_equal_to_the_own_time_keeps_parse_event_semantics() -> None:
    # ts= / time= later in the body replace a time that equals the receive time.
    own = "2026-01-19T08:00:00.003Z"
    received = parse_event(0, 0.0, "", f"ts={own}".encode()).ts
    texts = [
        f"ts={own} level=info service=api time=2026-01-18T00:00:00Z".encode(),
        f'{{"timestamp":"{own}","level":"info","service":"api","time":"2026-01-18T00:00:00Z"}}'.encode(),
        f"[INFO] {own[:10]} {own[11:23]} api/1 ts=2026-01-18T00:00:00Z".encode(),
    ]
    x = Extractor()
    fields = x.extract(encode_payload(texts), received)
    assert_parity(x, texts, fields, [received] * len(texts))
    assert fields.fallback == len(texts)
