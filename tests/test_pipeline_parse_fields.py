"""Fields found in any line (SPEC §3) through `parse_event`: logfmt and id lines.

`key=value` pairs (a whole logfmt line, or pairs anywhere in a message) and the
seed's id lines ("Request ID: …", "Thread: …, Request: POST /route").
"""

from __future__ import annotations

import random
import re
import time

import pytest

from tests.parse_helpers import parse, utc

# --- logfmt ---------------------------------------------------------------------------


def test_logfmt_keys_fill_the_event() -> None:
    line = (
        'ts=2026-01-19T15:30:01Z level=warn service=checkout msg="payment slow" '
        'user="Bob Smith" status=503 duration_ms=12.5 empty=""'
    )
    ev = parse(line)
    assert ev.ts == utc(2026, 1, 19, 15, 30, 1)
    assert ev.level == "WARN"
    assert ev.service == "checkout"
    assert ev.message == "payment slow"
    assert ev.fields == {
        "ts": "2026-01-19T15:30:01Z",
        "level": "warn",
        "service": "checkout",
        "msg": "payment slow",
        "user": "Bob Smith",
        "status": "503",
        "duration_ms": "12.5",
        "empty": "",
    }


def test_logfmt_without_quotes() -> None:
    ev = parse("time=2026-01-19T15:30:01 level=error service=api route=/v1/x method=GET")
    assert ev.ts == utc(2026, 1, 19, 15, 30, 1)
    assert ev.level == "ERROR"
    assert ev.service == "api"
    assert ev.fields["route"] == "/v1/x"
    assert ev.fields["method"] == "GET"


def test_logfmt_unquoted_msg_fills_the_message() -> None:
    ev = parse("level=info msg=started k=1")
    assert ev.level == "INFO"
    assert ev.message == "started"
    assert ev.fields == {"level": "info", "msg": "started", "k": "1"}


def test_a_msg_pair_does_not_replace_the_message_of_a_header() -> None:
    ev = parse('[INFO] 2026-01-19 15:30:01 svc/v1: done msg="x y"')
    assert ev.message == 'done msg="x y"'
    assert ev.fields == {"msg": "x y"}


def test_logfmt_quoted_values_are_unescaped() -> None:
    ev = parse(r'level=info msg="say \"hi\" to C:\\dir" path="C:\\tmp" q=' + "'single quoted'")
    assert ev.message == 'say "hi" to C:\\dir'
    assert ev.fields["msg"] == 'say "hi" to C:\\dir'
    assert ev.fields["path"] == "C:\\tmp"
    assert ev.fields["q"] == "single quoted"


def test_logfmt_pairs_anywhere_in_a_line() -> None:
    ev = parse("ERROR payment failed order=ORD-1 amount=23.5, retry=3;attempt=2")
    assert ev.level == "ERROR"
    assert ev.fields == {"order": "ORD-1", "amount": "23.5", "retry": "3", "attempt": "2"}


def test_logfmt_first_occurrence_wins() -> None:
    ev = parse("a=1 a=2 b=x")
    assert ev.fields == {"a": "1", "b": "x"}


@pytest.mark.parametrize(
    "line",
    ["a=1,b=2", "say:x=1 y=2", "(k=v) é=1 _u.v-w=3", "url=http://h/?a=1&b=2 t=x'y"],
)
def test_logfmt_same_pairs_with_or_without_a_quoted_value(line: str) -> None:
    # A quoted value elsewhere in the line switches to the regex scan; the pairs
    # found must not depend on that (they once did: "a=1,b=2" gave only a).
    plain = parse(line).fields
    quoted = parse(line + ' zz="q"').fields
    assert quoted == {**plain, "zz": "q"}


# --- the seed's id lines --------------------------------------------------------------


def test_seed_id_line() -> None:
    ev = parse("Request ID: req-1, User ID: user-2, Correlation ID: abc")
    assert ev.fields == {"request_id": "req-1", "user_id": "user-2", "correlation_id": "abc"}


def test_seed_trace_and_span_ids() -> None:
    ev = parse("INFO done Trace ID: t-1 Span ID: s-2")
    assert ev.level == "INFO"
    assert ev.fields == {"trace_id": "t-1", "span_id": "s-2"}


def test_seed_thread_line() -> None:
    ev = parse("Thread: x, Request: POST /api/v1/payments/8472")
    assert ev.fields == {"thread": "x", "method": "POST", "route": "/api/v1/payments/8472"}


def test_seed_ids_in_a_later_line_of_the_body() -> None:
    ev = parse("ERROR boom\n  at x\nRequest ID: req-9, User ID: u-1\nThread: t 1, Request: GET /h")
    assert ev.message == "ERROR boom"
    assert ev.fields == {
        "request_id": "req-9",
        "user_id": "u-1",
        "thread": "t 1",
        "method": "GET",
        "route": "/h",
    }


def test_long_thread_lines_parse_in_linear_time() -> None:
    # "Thread:" repeated on one 64 KiB line took ~4 s (each one scanned to the line's end).
    for text in (b"Thread:" * 9000, b"x Thread: " * 6500 + b"\nnext"):
        start = time.perf_counter()
        parse(text)
        assert time.perf_counter() - start < 1.0


def test_seed_ids_are_found_as_the_keyed_pattern_finds_them() -> None:
    # The ids are searched by " ID:" with the key looked up behind it (fast); the
    # answer must be the one-pattern search's, also where keys and values crowd.
    keyed = re.compile(
        r"(?P<key>Request ID|User ID|Correlation ID|Trace ID|Span ID):\s*(?P<value>[^\s,]+)"
    )
    bits = ["Request", "User", "Trace", "Span", "Correlation", " ID:", " ID: ", " ", ",", "x", "\n"]
    rnd = random.Random(7)
    for _ in range(3000):
        body = "".join(rnd.choice(bits) for _ in range(rnd.randint(1, 14)))
        want: dict[str, str] = {}
        for m in keyed.finditer(body):
            want.setdefault(m["key"].lower().replace(" ", "_"), m["value"])
        got = parse("x " + body).fields
        assert {k: v for k, v in got.items() if k.endswith("_id")} == want, repr(body)
