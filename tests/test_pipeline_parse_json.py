"""Parsing of JSON object lines (SPEC §3) through `parse_event`.

Time, level, message and attribute keys fill the event; every other key is a
field; arrays and invalid JSON stay plain text.
"""

from __future__ import annotations

import time

import orjson
import pytest

from tests.parse_helpers import RECEIVED, parse, utc

# --- JSON objects -------------------------------------------------------------------


def test_ecs_dotted_keys_fill_the_event_as_ecs_logging_writes_them() -> None:
    # ecs-logging (Python, Java, Go) writes `log.level` and dotted service keys flat.
    line = orjson.dumps(
        {
            "@timestamp": "2026-01-19T15:30:01.250Z",
            "log.level": "error",
            "message": "card declined",
            "service.name": "payment-api",
            "service.version": "2.3.1",
            "host.name": "node-3",
            "ecs.version": "1.6.0",
        }
    )
    ev = parse(line)
    assert ev.ts == utc(2026, 1, 19, 15, 30, 1, 250_000)
    assert (ev.level, ev.service, ev.version, ev.host) == (
        "ERROR",
        "payment-api",
        "2.3.1",
        "node-3",
    )
    assert ev.fields == {"ecs.version": "1.6.0"}


@pytest.mark.parametrize("dotted_first", [True, False])
def test_a_plain_key_wins_over_its_ecs_dotted_key_in_any_order(dotted_first: bool) -> None:
    pairs = [("service.name", "dotted-svc"), ("host.name", "dotted-host")]
    plain = [("service", "plain-svc"), ("host", "plain-host")]
    line = orjson.dumps(dict(pairs + plain if dotted_first else plain + pairs))
    ev = parse(line)
    assert (ev.service, ev.host) == ("plain-svc", "plain-host")
    assert ev.fields == {"service.name": "dotted-svc", "host.name": "dotted-host"}


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
