"""Parsing of every input format of SPEC §3 through `parse_event`, plus properties.

Example tests pin the behaviour of each format; the hypothesis tests check that
no input, however hostile, makes the parser raise or stall, and that structured
events written as JSON or logfmt survive a round trip.
"""

from __future__ import annotations

import string
import time
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from logcaster.event import LEVELS, Event
from logcaster.pipeline.parse import parse_event
from tests.test_framing import SEED_JAVA_BLOCK, SEED_JAVA_BLOCK_2, SEED_PYTHON_BLOCK

RECEIVED = 1_768_836_000.0  # 2026-01-19 15:20:00 UTC
SOURCE = "tcp:127.0.0.1:40000"


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> float:
    """Unix seconds of a UTC wall-clock time."""
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC).timestamp()


def parse(text: bytes | str, received_at: float = RECEIVED) -> Event:
    data = text.encode() if isinstance(text, str) else text
    ev = parse_event(7, received_at, SOURCE, data)
    assert ev.id == 7
    assert ev.source == SOURCE
    assert ev.received_at == received_at
    return ev


# --- JSON objects -------------------------------------------------------------------


def test_json_object_fills_the_event_and_keeps_other_keys_as_fields() -> None:
    line = orjson.dumps(
        {
            "timestamp": "2026-01-19T15:30:01.250Z",
            "level": "warning",
            "service": "payment-api",
            "version": "v2.3.1",
            "host": "node-3",
            "pod": "payment-api-7d8f9c-abc123",
            "message": "slow response",
            "route": "/api/v1/payments",
            "status": 503,
            "duration_ms": 1250.5,
            "ok": False,
            "ctx": {"user": {"id": 7, "roles": ["a", "b"]}, "empty": {}},
        }
    )
    ev = parse(line)
    assert ev.ts == utc(2026, 1, 19, 15, 30, 1, 250_000)
    assert ev.level == "WARN"
    assert ev.service == "payment-api"
    assert ev.version == "v2.3.1"
    assert ev.host == "node-3"
    assert ev.pod == "payment-api-7d8f9c-abc123"
    assert ev.message == "slow response"
    assert ev.body == line.decode()
    assert ev.fields == {
        "route": "/api/v1/payments",
        "status": 503,
        "duration_ms": 1250.5,
        "ok": False,
        "ctx": {"user": {"id": 7, "roles": ["a", "b"]}, "empty": {}},
    }


@pytest.mark.parametrize("key", ["timestamp", "time", "ts", "@timestamp"])
def test_json_time_keys(key: str) -> None:
    ev = parse(orjson.dumps({key: "2026-01-19T15:30:01+02:00", "msg": "m"}))
    assert ev.ts == utc(2026, 1, 19, 13, 30, 1)
    assert key not in ev.fields


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1768836601, 1768836601.0),  # epoch seconds
        (1768836601.5, 1768836601.5),  # fractional seconds
        (1768836601123, 1768836601.123),  # epoch milliseconds
        ("2026-01-19T15:30:01", utc(2026, 1, 19, 15, 30, 1)),  # no zone: UTC
        ("2026-01-19 15:30:01.5Z", utc(2026, 1, 19, 15, 30, 1, 500_000)),
        ("2026-01-19T15:30:01,250+00:00", utc(2026, 1, 19, 15, 30, 1, 250_000)),
    ],
)
def test_json_time_values(value: object, expected: float) -> None:
    ev = parse(orjson.dumps({"ts": value, "message": "m"}))
    assert ev.ts == pytest.approx(expected, abs=1e-6)
    assert ev.fields == {}


@pytest.mark.parametrize("value", ["yesterday", True, None, [1], {"s": 1}, 1e20, -1e13])
def test_json_unusable_time_is_kept_as_a_field_and_ts_is_received_at(value: object) -> None:
    ev = parse(orjson.dumps({"ts": value, "msg": "m"}))
    assert ev.ts == RECEIVED
    assert ev.fields == {"ts": value}


def test_json_time_out_of_range_cannot_break_row_formatting() -> None:
    # {"ts": 1e20} once gave ts=1e17: every text QUERY/RECENT showing it failed in gmtime.
    ev = parse(b'{"ts": 1e20, "msg": "x"}')
    time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ev.ts))


@pytest.mark.parametrize(
    ("key", "spelling", "level"),
    [
        ("level", "info", "INFO"),
        ("level", "Information", "INFO"),
        ("level", "notice", "INFO"),
        ("level", "WARNING", "WARN"),
        ("level", "warn", "WARN"),
        ("level", "err", "ERROR"),
        ("level", "Error", "ERROR"),
        ("level", "severe", "ERROR"),
        ("level", "CRITICAL", "FATAL"),
        ("level", "crit", "FATAL"),
        ("level", "emerg", "FATAL"),
        ("level", "panic", "FATAL"),
        ("level", "dbg", "DEBUG"),
        ("level", "trace", "TRACE"),
        ("severity", "ERROR", "ERROR"),
        ("lvl", "debug", "DEBUG"),
        ("loglevel", "fatal", "FATAL"),
    ],
)
def test_json_level_aliases(key: str, spelling: str, level: str) -> None:
    ev = parse(orjson.dumps({key: spelling, "msg": "m"}))
    assert ev.level == level
    assert ev.fields == {}


def test_json_unknown_level_is_kept_as_a_field() -> None:
    ev = parse(b'{"level": "loud", "msg": "m"}')
    assert ev.level is None
    assert ev.fields == {"level": "loud"}


def test_json_msg_key_and_message_is_the_first_line() -> None:
    ev = parse(b'{"msg": "first\\nsecond", "service": "svc"}')
    assert ev.message == "first"
    assert ev.service == "svc"
    assert ev.ts == RECEIVED


def test_json_without_message_keeps_the_line_as_message() -> None:
    ev = parse(b'{"a": 1}')
    assert ev.message == '{"a": 1}'
    assert ev.fields == {"a": 1}
    assert ev.level is None


@pytest.mark.parametrize(
    "line",
    [
        b'[{"level": "error", "msg": "m"}]',  # a JSON array
        b'{"level": "error", "msg": "m"',  # truncated object
        b"{not json at all}",
        b'{"level": "error"} trailing',
        b"{",
    ],
)
def test_json_array_or_invalid_json_stays_plain_text(line: bytes) -> None:
    ev = parse(line)
    assert ev.body == line.decode()
    assert ev.message == line.decode()
    assert ev.level is None
    assert ev.service is None
    assert ev.ts == RECEIVED
    assert ev.fields == {}


def test_json_message_pairs_are_read_from_the_decoded_message() -> None:
    # Read from the raw JSON text, the escaped quotes once gave the field name='\\'.
    ev = parse(orjson.dumps({"msg": 'login user=bob name="Bob Smith"', "level": "info"}))
    assert ev.message == 'login user=bob name="Bob Smith"'
    assert ev.fields == {"user": "bob", "name": "Bob Smith"}
    # Another key's value is not scanned, nor does a pair override a JSON key.
    ev = parse(orjson.dumps({"msg": "a user=eve", "user": "bob", "q": "x=1 y=2"}))
    assert ev.fields == {"user": "bob", "q": "x=1 y=2"}


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


# --- syslog ------------------------------------------------------------------------


def test_rfc5424_with_structured_data_and_bom() -> None:
    line = (
        b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 4711 ID47 "
        b'[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]'
        b'[examplePriority@32473 class="high"] \xef\xbb\xbfAn application event'
    )
    ev = parse(line)
    assert ev.level == "INFO"  # 165 = local4.notice
    assert ev.ts == pytest.approx(utc(2003, 10, 11, 22, 14, 15, 3000))
    assert ev.host == "mymachine.example.com"
    assert ev.service == "evntslog"
    assert ev.message == "An application event"  # BOM stripped
    assert ev.fields == {
        "facility": 20,
        "procid": "4711",
        "msgid": "ID47",
        "iut": "3",
        "eventSource": "Application",
        "eventID": "1011",
        "class": "high",
    }


def test_rfc5424_nil_values() -> None:
    ev = parse("<34>1 - - - - - - su failed")
    assert ev.level == "FATAL"  # 34 = auth.crit
    assert ev.ts == RECEIVED
    assert ev.host is None
    assert ev.service is None
    assert ev.message == "su failed"
    assert ev.fields == {"facility": 4}


def test_rfc5424_without_message_and_with_offset_time() -> None:
    ev = parse("<13>1 2026-01-19T15:30:01.5+09:00 host app - - -")
    assert ev.ts == pytest.approx(utc(2026, 1, 19, 6, 30, 1, 500_000))
    assert ev.message == ""
    assert ev.service == "app"


def test_rfc5424_escaped_param_values() -> None:
    ev = parse(r'<14>1 2026-01-19T15:30:01Z h app - - [a@1 k="say \"hi\" \\ \]"] msg')
    assert ev.fields["k"] == 'say "hi" \\ \\]'
    assert ev.message == "msg"


@pytest.mark.parametrize(
    ("severity", "level"),
    [
        (0, "FATAL"),
        (1, "FATAL"),
        (2, "FATAL"),
        (3, "ERROR"),
        (4, "WARN"),
        (5, "INFO"),
        (6, "INFO"),
        (7, "DEBUG"),
    ],
)
def test_syslog_priority_to_level(severity: int, level: str) -> None:
    pri = 3 * 8 + severity  # facility daemon
    ev = parse(f"<{pri}>1 2026-01-19T15:30:01Z h app - - - m")
    assert ev.level == level
    assert ev.fields["facility"] == 3
    ev = parse(f"<{pri}>Jan 19 15:30:01 h app: m")
    assert ev.level == level


def test_rfc3164_with_host() -> None:
    ev = parse("<13>Jan 19 15:30:01 myhost sshd[42]: Accepted publickey for bob")
    assert ev.level == "INFO"
    # No year and no zone: the receiver's local year and zone.
    assert ev.ts == datetime(2026, 1, 19, 15, 30, 1).timestamp()
    assert ev.host == "myhost"
    assert ev.service == "sshd"
    assert ev.message == "Accepted publickey for bob"
    assert ev.fields == {"facility": 1, "procid": "42"}


def test_rfc3164_without_host() -> None:
    ev = parse("<13>Jan  9 15:30:01 sshd[42]: msg")
    assert ev.host is None
    assert ev.service == "sshd"
    assert ev.message == "msg"
    assert ev.ts == datetime(2026, 1, 9, 15, 30, 1).timestamp()
    ev = parse("<13>Jan 19 15:30:01 cron: job done")
    assert ev.host is None
    assert ev.service == "cron"
    assert ev.message == "job done"
    assert ev.fields == {"facility": 1}


def test_rfc3164_time_ahead_is_last_year() -> None:
    received = datetime(2026, 1, 2, 0, 0, 0).timestamp()
    ev = parse("<13>Dec 31 23:59:59 h app: m", received_at=received)
    assert ev.ts == datetime(2025, 12, 31, 23, 59, 59).timestamp()


def test_rfc3164_feb_29_in_a_leap_year_does_not_raise() -> None:
    # Received in January 2028, "Feb 29" is ahead, and 2027 has no Feb 29: this raised.
    received = datetime(2028, 1, 15, 12, 0, 0).timestamp()
    ev = parse("<13>Feb 29 10:00:00 h app: m", received_at=received)
    assert ev.ts == datetime(2028, 2, 29, 10, 0, 0).timestamp()
    assert ev.message == "m"


def test_rfc3164_bad_date_falls_back_to_received_at() -> None:
    ev = parse("<13>Feb 30 15:30:01 h app: m")
    assert ev.ts == RECEIVED
    assert ev.service == "app"


def test_python_sysloghandler_message() -> None:
    # logging.handlers.SysLogHandler sends "<PRI>message\x00".
    ev = parse(b"<11>message\x00")
    assert ev.level == "ERROR"  # 11 = user.err
    assert ev.message == "message"
    assert ev.fields == {"facility": 1}
    assert ev.ts == RECEIVED


def test_python_sysloghandler_message_is_parsed_as_a_line_of_its_own() -> None:
    ev = parse(b"<14>[WARN] 2026-01-19 15:30:01.234 svc/v1 pod/p-1: careful k=v\x00")
    assert ev.level == "WARN"  # the line's own level over the priority's INFO
    assert ev.service == "svc"
    assert ev.pod == "p-1"
    assert ev.ts == pytest.approx(utc(2026, 1, 19, 15, 30, 1, 234_000))
    assert ev.message == "careful k=v"
    assert ev.fields == {"k": "v", "facility": 1}


def test_stacked_priorities_do_not_recurse() -> None:
    # Each "<N>" was parsed by a recursive call: 2000 of them raised RecursionError.
    ev = parse(b"<11>" * 2000)
    assert ev.level == "ERROR"
    assert ev.message == "<11>" * 1999


@pytest.mark.parametrize("line", ["<999>1 - - - - - - m", "<>x", "<", "<abc>def", "<13>"])
def test_not_quite_syslog_never_raises(line: str) -> None:
    ev = parse(line)
    assert ev.body == line


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


# --- properties -----------------------------------------------------------------------

# Prefixes that steer the parser into each format, and units that, repeated,
# probe for super-linear regexes and deep recursion.
_PREFIXES = [
    b"",
    b"{",
    b'{"ts": ',
    b'{"msg": "',
    b"<13>",
    b"<13>1 ",
    b"<165>1 2003-10-11T22:14:15.003Z h app - - [a@1 ",
    b"<13>Feb 29 10:00:00 ",
    b"<13>Jan 19 15:30:01 host app[1]: ",
    b"[ERROR] 2026-01-19 15:30:01.234 ",
    b"[ERROR] 2026-01-19 15:30:01.234 svc/v1 pod/p: ",
    b"ERROR: svc/v1 pod/",
    b"2026-01-19 ",
    b"2026-01-19T15:30:01",
    b"level=",
    b'msg="',
    b"Request ID: ",
    b"Thread: t, Request: ",
]
_UNITS = [
    b"Thread:",
    b"x Thread: ",
    b"Thread: a",
    b"<1>",
    b"a=",
    b'k="\\',
    b"k='",
    b"Request ID: ",
    b"[",
    b"{",
    b"\xff",
    b"a.",
    b"=",
    b" ",
    b"\n",
    b"\x00",
    b"Feb 29 ",
    b"\\",
    b"9",
    b"\t",
    b"ID:",
]


@st.composite
def hostile_bytes(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return draw(st.binary(max_size=512))
    if kind == 1:
        return draw(st.sampled_from(_PREFIXES)) + draw(st.binary(max_size=256))
    prefix = draw(st.sampled_from(_PREFIXES))
    unit = draw(st.sampled_from(_UNITS))
    count = draw(st.integers(1, 20_000))
    return prefix + unit * count + draw(st.binary(max_size=32))


_RECEIVED_TIMES = st.one_of(
    st.just(RECEIVED),
    st.floats(0, 4_102_444_800),  # 1970 .. 2100
    st.sampled_from([utc(2028, 1, 15), utc(2028, 2, 29, 12), utc(2027, 12, 31, 23, 59)]),
)


@settings(max_examples=300, deadline=1000, suppress_health_check=[HealthCheck.too_slow])
@given(data=hostile_bytes(), received_at=_RECEIVED_TIMES)
def test_any_bytes_parse_quickly_and_never_raise(data: bytes, received_at: float) -> None:
    ev = parse_event(3, received_at, SOURCE, data)
    assert ev.id == 3
    assert ev.body == data.decode("utf-8", "replace")
    assert "\n" not in ev.message
    assert ev.level is None or ev.level in LEVELS
    assert isinstance(ev.ts, float)
    # Every reader formats the time: it must be a time they can format.
    time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ev.ts))
    datetime.fromtimestamp(ev.ts, UTC)
    assert all(isinstance(key, str) for key in ev.fields)
    orjson.dumps(ev.to_dict(), default=str)


_RESERVED_KEYS = {
    "timestamp",
    "time",
    "ts",
    "@timestamp",
    "message",
    "msg",
    "level",
    "severity",
    "lvl",
    "loglevel",
    "service",
    "version",
    "host",
    "hostname",
    "pod",
}
_field_keys = st.from_regex(r"[a-z_][a-z0-9_]{0,11}", fullmatch=True).filter(
    lambda key: key not in _RESERVED_KEYS
)
_one_line_text = st.text(st.characters(codec="utf-8", exclude_characters="\n"), max_size=40)
_services = st.from_regex(r"[a-z][a-z0-9-]{0,15}", fullmatch=True)
_fields = st.dictionaries(_field_keys, _one_line_text, max_size=6)
_SAFE_UNQUOTED = set(string.ascii_letters + string.digits + "_./:-")


def _no_seed_ids(message: str) -> bool:
    """The seed's id lines ("Request ID: x", "Thread: …") add fields of their own."""
    return "ID:" not in message and "Thread:" not in message


@settings(max_examples=200, deadline=None)
@given(
    level=st.sampled_from(LEVELS),
    service=_services,
    message=_one_line_text,
    fields=_fields,
    message_key=st.sampled_from(["message", "msg"]),
)
def test_json_round_trip(
    level: str, service: str, message: str, fields: dict[str, str], message_key: str
) -> None:
    assume(_no_seed_ids(message))
    line = orjson.dumps({"level": level, "service": service, message_key: message, **fields})
    ev = parse(line)
    assert ev.level == level
    assert ev.service == service
    assert ev.message == message
    if "=" in message:  # pairs in the message add fields, never change the object's
        assert {key: ev.fields[key] for key in fields} == fields
    else:
        assert ev.fields == fields


def _logfmt_value(value: str) -> str:
    if value and set(value) <= _SAFE_UNQUOTED:
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@settings(max_examples=200, deadline=None)
@given(level=st.sampled_from(LEVELS), service=_services, message=_one_line_text, fields=_fields)
def test_logfmt_round_trip(level: str, service: str, message: str, fields: dict[str, str]) -> None:
    assume(_no_seed_ids(message) and all(_no_seed_ids(value) for value in fields.values()))
    pairs = [f"level={level}", f"service={service}", f"msg={_logfmt_value(message)}"]
    pairs += [f"{key}={_logfmt_value(value)}" for key, value in fields.items()]
    ev = parse(" ".join(pairs))
    assert ev.level == level
    assert ev.service == service
    assert ev.message == message
    assert ev.fields == {"level": level, "service": service, "msg": message, **fields}
