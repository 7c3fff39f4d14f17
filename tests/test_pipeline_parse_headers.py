"""Parsing of text lines (SPEC §3) through `parse_event`: headers and level words.

The simulator's headers (seed 002) and its multi-line blocks, the Python-style
header, LogCaster's timestamped test lines, plain text with a leading level
word, and what every format shares: times without a zone are UTC, a missing
time is the receive time, the message is the first line.
"""

from __future__ import annotations

import pytest

from tests.parse_helpers import RECEIVED, parse, utc
from tests.test_framing import SEED_JAVA_BLOCK, SEED_JAVA_BLOCK_2, SEED_PYTHON_BLOCK

# --- the simulator's headers (seed 002) -----------------------------------------------


def test_sim_header_without_pod() -> None:
    line = (
        "[INFO] 2026-01-19 15:30:01.234 order-service/v1.8.4: "
        "Order processed successfully: ORDER-847239 ($234.56, 3 items)"
    )
    ev = parse(line)
    assert ev.level == "INFO"
    assert ev.ts == pytest.approx(utc(2026, 1, 19, 15, 30, 1, 234_000))
    assert ev.service == "order-service"
    assert ev.version == "v1.8.4"
    assert ev.pod is None
    assert ev.message == "Order processed successfully: ORDER-847239 ($234.56, 3 items)"
    assert ev.fields == {}


def test_sim_header_with_pod_and_message_on_the_same_line() -> None:
    ev = parse(
        "[WARN] 2026-01-19 15:30:05.456 payment-api/v2.3.1 pod/payment-api-7d8f9c-abc123: slow"
    )
    assert ev.level == "WARN"
    assert ev.ts == pytest.approx(utc(2026, 1, 19, 15, 30, 5, 456_000))
    assert ev.service == "payment-api"
    assert ev.version == "v2.3.1"
    assert ev.pod == "payment-api-7d8f9c-abc123"
    assert ev.message == "slow"


def test_sim_header_logfmt_pairs_in_the_message_become_fields() -> None:
    ev = parse(
        "[WARN] 2026-01-19 15:30:05.456 payment-api/v2.3.1: "
        "Response time degraded: p95=1250ms (SLA: 500ms)"
    )
    assert ev.level == "WARN"
    assert ev.message == "Response time degraded: p95=1250ms (SLA: 500ms)"
    assert ev.fields == {"p95": "1250ms"}


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2026-01-19T15:30:01.234", utc(2026, 1, 19, 15, 30, 1, 234_000)),
        ("2026-01-19 15:30:01,5", utc(2026, 1, 19, 15, 30, 1, 500_000)),
        ("2026-01-19 15:30:01", utc(2026, 1, 19, 15, 30, 1)),
    ],
)
def test_sim_header_time_variants_are_utc(stamp: str, expected: float) -> None:
    ev = parse(f"[ERROR] {stamp} svc/1.0: boom")
    assert ev.ts == pytest.approx(expected)
    assert ev.level == "ERROR"
    assert ev.message == "boom"


def test_sim_java_block_message_is_on_the_second_line() -> None:
    ev = parse(SEED_JAVA_BLOCK)
    assert ev.body == SEED_JAVA_BLOCK
    assert ev.level == "ERROR"
    assert ev.ts == pytest.approx(utc(2026, 1, 19, 15, 30, 1, 234_000))
    assert ev.service == "payment-api"
    assert ev.version == "v2.3.1"
    assert ev.pod == "payment-api-7d8f9c-abc123"
    assert (
        ev.message == "Connection pool exhausted: unable to acquire connection within 30s timeout"
    )
    assert ev.first_line == SEED_JAVA_BLOCK.split("\n")[0]
    assert ev.fields == {
        "thread": "http-nio-8080-exec-23",
        "method": "POST",
        "route": "/api/v1/payments/8472",
    }


def test_sim_java_block_2() -> None:
    ev = parse(SEED_JAVA_BLOCK_2)
    assert ev.level == "ERROR"
    assert ev.service == "inventory-service"
    assert ev.version == "v2.1.5"
    assert ev.pod == "inventory-service-6t7u8v-mno901"
    assert ev.message == "Stock synchronization failed: pessimistic lock timeout after 10s"
    assert ev.fields == {
        "thread": "http-nio-8080-exec-17",
        "method": "POST",
        "route": "/api/v1/inventory/4829",
    }


def test_unknown_bracket_word_is_plain_text() -> None:
    line = "[NOTALEVEL] 2026-01-19 15:30:01 something"
    ev = parse(line)
    assert ev.level is None
    assert ev.service is None
    assert ev.message == line
    assert ev.ts == RECEIVED


def test_python_variant_with_pod() -> None:
    ev = parse("INFO: auth-service/v3.1.0 pod/auth-service-9p4q5r-ghi345 token refreshed")
    assert ev.level == "INFO"
    assert ev.service == "auth-service"
    assert ev.version == "v3.1.0"
    assert ev.pod == "auth-service-9p4q5r-ghi345"
    assert ev.message == "token refreshed"
    assert ev.ts == RECEIVED  # the Python variant carries no time


def test_python_variant_without_pod() -> None:
    ev = parse("WARNING: auth-service/3.1.0 token nearly expired")
    assert ev.level == "WARN"
    assert ev.service == "auth-service"
    assert ev.version == "3.1.0"
    assert ev.pod is None
    assert ev.message == "token nearly expired"


def test_sim_python_block() -> None:
    ev = parse(SEED_PYTHON_BLOCK)
    assert ev.body == SEED_PYTHON_BLOCK
    assert ev.level == "ERROR"
    assert ev.service == "auth-service"
    assert ev.version == "v3.1.0"
    assert ev.pod == "auth-service-9p4q5r-ghi345"
    assert ev.message == "JWT token validation failed: signature verification error"
    assert ev.fields == {
        "request_id": "req-842951",
        "user_id": "user-7234",
        "correlation_id": "a3f8b2c1-4d5e-6f7g",
    }


# --- LogCaster's test lines --------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "ts", "level", "message"),
    [
        ("2026-01-19 ERROR: disk full", utc(2026, 1, 19), "ERROR", "disk full"),
        ("2026-01-19 15:30:01 WARNING: slow", utc(2026, 1, 19, 15, 30, 1), "WARN", "slow"),
        ("2026-01-19 15:30:01 INFO started", utc(2026, 1, 19, 15, 30, 1), "INFO", "started"),
        ("2026-01-19T15:30:01Z [DEBUG] x", utc(2026, 1, 19, 15, 30, 1), "DEBUG", "x"),
        (
            "2026-01-19 15:30:01.123+01:00 CRITICAL: core",
            utc(2026, 1, 19, 14, 30, 1, 123_000),
            "FATAL",
            "core",
        ),
        ("2026-01-19 15:30:01,5 ERR: e", utc(2026, 1, 19, 15, 30, 1, 500_000), "ERROR", "e"),
    ],
)
def test_test_lines(line: str, ts: float, level: str, message: str) -> None:
    ev = parse(line)
    assert ev.ts == pytest.approx(ts)
    assert ev.level == level
    assert ev.message == message
    assert ev.body == line


def test_test_line_without_level() -> None:
    ev = parse("2026-01-19 15:30:01 nothing special")
    assert ev.ts == utc(2026, 1, 19, 15, 30, 1)
    assert ev.level is None


# --- access lines (nginx/Apache common and combined) --------------------------------------


@pytest.mark.parametrize(
    ("line", "ts"),
    [
        (
            '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326',
            utc(2000, 10, 10, 20, 55, 36),
        ),
        (
            '10.1.2.3 - - [19/Jan/2026:08:00:00 +0000] "GET /a HTTP/1.1" 200 5 "-" "curl/8.5.0"',
            utc(2026, 1, 19, 8),
        ),
        (
            '2001:db8::1 - - [29/Feb/2024:00:30:00 +0530] "GET / HTTP/2.0" 404 0',
            utc(2024, 2, 28, 19),
        ),
        # Not a time: the receive time.
        ('10.1.2.3 - - [29/Feb/2026:08:00:00 +0000] "GET / HTTP/1.1" 200 5', RECEIVED),
        ('10.1.2.3 - - [19/Foo/2026:08:00:00 +0000] "GET / HTTP/1.1" 200 5', RECEIVED),
        ('10.1.2.3 - - [19/Jan/2026:24:00:00 +0000] "GET / HTTP/1.1" 200 5', RECEIVED),
        ('10.1.2.3 - - [19/Jan/2026:08:00:60 +0000] "GET / HTTP/1.1" 200 5', RECEIVED),
        ('10.1.2.3 - - [19/Jan/2026:08:00:00 +0060] "GET / HTTP/1.1" 200 5', RECEIVED),
        ('10.1.2.3 - - [19/Jan/2026:08:00:00] "GET / HTTP/1.1" 200 5', RECEIVED),
        ('10.1.2.3 - [19/Jan/2026:08:00:00 +0000] "GET / HTTP/1.1" 200 5', RECEIVED),
    ],
)
def test_an_access_line_s_time_is_the_event_time(line: str, ts: float) -> None:
    """SPEC §1: the event time is the line's when it carries one; its zone is an
    offset. An access line names no level or service of its own."""
    ev = parse(line)
    assert ev.ts == ts
    assert ev.level is None and ev.service is None
    assert ev.message == line


def test_an_access_line_s_own_time_wins_over_a_ts_pair() -> None:
    ev = parse('10.1.2.3 - - [19/Jan/2026:08:00:00 +0000] "GET / HTTP/1.1" 200 5 ts=2020-01-01')
    assert ev.ts == utc(2026, 1, 19, 8)
    assert ev.fields["ts"] == "2020-01-01"


# --- plain text -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ("ERROR something broke", "ERROR"),
        ("ERROR: something broke", "ERROR"),
        ("[ERROR] something broke", "ERROR"),
        ("error|something broke", "ERROR"),
        ("WARNING disk at 91%", "WARN"),
        ("Warn: disk at 91%", "WARN"),
        ("CRITICAL: core dumped", "FATAL"),
        ("ERR connection reset", "ERROR"),
        ("INFO", "INFO"),
        ("debug details", "DEBUG"),
        ("Errors happen", None),
        ("hello world", None),
        ("", None),
        ("   indented ERROR", None),
    ],
)
def test_plain_text_leading_level_word(line: str, level: str | None) -> None:
    ev = parse(line)
    assert ev.level == level
    assert ev.message == line  # plain text: the message is the line itself
    assert ev.body == line
    assert ev.ts == RECEIVED
    assert ev.service is None
    assert ev.fields == {}


def test_invalid_utf8_is_replaced_not_dropped() -> None:
    ev = parse(b"ERROR bad \xff\xfe bytes \xc3(")
    assert ev.level == "ERROR"
    assert ev.body == "ERROR bad \ufffd\ufffd bytes \ufffd("
    assert ev.message == ev.body
    ev = parse(b"[WARN] 2026-01-19 15:30:01.234 svc/v1: caf\xe9 k=\xff")
    assert ev.level == "WARN"
    assert ev.message == "caf\ufffd k=\ufffd"
    assert ev.fields == {"k": "\ufffd"}


def test_time_without_zone_is_utc_in_every_format() -> None:
    expected = utc(2026, 1, 19, 15, 30, 1)
    assert parse("2026-01-19 15:30:01 INFO x").ts == expected
    assert parse("[INFO] 2026-01-19 15:30:01 svc/v1: x").ts == expected
    assert parse(b'{"time": "2026-01-19T15:30:01"}').ts == expected
    assert parse("ts=2026-01-19T15:30:01 msg=x").ts == expected


def test_ts_falls_back_to_received_at() -> None:
    for line in ["hello", '{"msg": "x"}', "ERROR: svc/v1 pod/p x", "k=v", "<11>x", "[ERROR] x"]:
        assert parse(line, received_at=1234.5).ts == 1234.5


def test_message_is_the_first_line_and_body_the_whole_text() -> None:
    text = "WARN first line\n  second\n  third"
    ev = parse(text)
    assert ev.message == "WARN first line"
    assert ev.first_line == "WARN first line"
    assert ev.body == text
    ev = parse('level=info msg="line one\nline two" k=v')
    assert ev.message == "line one"
