"""Properties of `parse_event` over any input (hypothesis).

No input, however hostile, makes the parser raise or stall, and structured
events written as JSON or logfmt survive a round trip.
"""

from __future__ import annotations

import string
import time
from datetime import UTC, datetime

import orjson
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from logcaster.event import LEVELS
from logcaster.parsing.parse import parse_event
from tests.parse_helpers import RECEIVED, SOURCE, parse, utc

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
