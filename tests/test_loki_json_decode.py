"""The Loki JSON push's raw fast path (`_from_json_raw`) against the full decode
(`_from_json`): the same events, parsed, whichever path a body takes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from logcaster.frontends.http.body import BodyError
from logcaster.frontends.http.loki_decode import _from_json, _from_json_raw, decode
from logcaster.parsing.parse import parse_event

MAX_LINE = 65536
NS = "1764931200123456789"


def parsed(texts: list[bytes]) -> list[tuple[Any, ...]]:
    out = []
    for text in texts:
        ev = parse_event(1, 1000.0, "loki", text)
        out.append((round(ev.ts, 6), ev.level, ev.service, ev.message, ev.fields))
    return out


def push(*streams: tuple[dict[str, str], list[list[Any]]]) -> bytes:
    return orjson.dumps({"streams": [{"stream": s, "values": v} for s, v in streams]})


def test_the_usual_push_takes_the_fast_path_with_the_same_events() -> None:
    body = push(
        ({"job": "api", "level": "warn"}, [[NS, "plain"], [NS, 'quote " and \\ and \n and é ☃']]),
        ({"app": "web"}, [["1764931200000000000", '{"nested": "json as a line"}']]),
        ({}, [[NS, ""]]),
    )
    fast = _from_json_raw(body, MAX_LINE)
    assert fast is not None
    assert parsed(fast.texts) == parsed(_from_json(body, MAX_LINE).texts)
    first = parse_event(1, 1000.0, "loki", fast.texts[0])
    assert (first.level, first.service, first.ts) == ("WARN", "api", 1764931200.1234567)


@pytest.mark.parametrize(
    "values",
    [
        [[NS, "with metadata", {"trace_id": "abc"}]],
        [["123", "a time before 1970-01-01 00:00:01"]],
        [["0" + NS[1:], "a time led by 0"]],
        [[int(NS), "a time as a number"]],
        [[NS, 42]],
        [[NS, "x" * 70_000]],
    ],
    ids=["metadata", "short-time", "leading-zero", "number-time", "not-a-string", "too-long"],
)
def test_any_other_push_is_left_to_the_full_decode(values: list[list[Any]]) -> None:
    body = push(({"job": "api"}, values))
    assert _from_json_raw(body, MAX_LINE) is None
    try:
        expected = parsed(_from_json(body, MAX_LINE).texts)
    except BodyError as exc:
        with pytest.raises(BodyError) as got:
            decode(body, "application/json", MAX_LINE, 10**7)
        assert (got.value.status, got.value.reason) == (exc.status, exc.reason)
    else:
        assert parsed(decode(body, "application/json", MAX_LINE, 10**7).texts) == expected


def test_a_lone_surrogate_escape_is_refused_by_either_path() -> None:
    line = b'["%s","\\ud800 bad"]' % NS.encode()
    body = b'{"streams":[{"stream":{"job":"x"},"values":[' + line + b"]}]}"
    assert _from_json_raw(body, MAX_LINE) is None
    with pytest.raises(BodyError, match="surrogate"):
        decode(body, "application/json", MAX_LINE, 10**7)
