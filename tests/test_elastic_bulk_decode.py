"""The bulk decoder's fast path (a uniform body) against its item-by-item path:
the same events, parsed, and answers of the same shape, whichever path a body takes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from logcaster.frontends.http.elastic_bulk import Bulk, _item_by_item, decode_bulk
from logcaster.frontends.http.elastic_filter import parse_filter
from logcaster.parsing.parse import parse_event

MAX_LINE = 65536


def body(*lines: object) -> bytes:
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


def parsed(bulk: Bulk) -> list[tuple[Any, ...]]:
    out = []
    for text in bulk.texts:
        ev = parse_event(1, 1000.0, "es", text)
        out.append((ev.ts, ev.level, ev.service, ev.host, ev.message, ev.fields))
    return out


def slow(data: bytes, index: str | None) -> Bulk:
    lines = [line.strip() for line in data.split(b"\n")]
    return _item_by_item([line for line in lines if line], index, MAX_LINE)


def answers(bulk: Bulk) -> list[tuple[str, Any, int]]:
    items = orjson.loads(bulk.answer(0))["items"]
    return [(act, doc["_index"], doc["status"]) for item in items for act, doc in item.items()]


CREATE: dict[str, Any] = {"create": {}}
SOURCES: list[dict[str, Any]] = [
    {"@timestamp": "2026-12-05T10:00:00Z", "message": "plain one", "level": "warn", "n": 1},
    {"message": "has {braces} inside", "service": "api"},
    {"message": "nested", "log": {"level": "error"}, "service": {"name": "billing"}},
    {"message": "dotted", "log.level": "info", "host.name": "web-1"},
    {"message": "its own index key", "index": "mine"},
    {"message": 'unicode \u00e9\u2028 and "quotes"', "tags": ["a", "b"]},
]


@pytest.mark.parametrize("index_in", ["path", "action"])
def test_a_uniform_body_takes_the_fast_path_with_the_same_events(index_in: str) -> None:
    action = CREATE if index_in == "path" else {"create": {"_index": "logs"}}
    data = body(*[line for source in SOURCES for line in (action, source)])
    default = "logs" if index_in == "path" else None
    fast = decode_bulk(data, default, MAX_LINE)
    assert fast.run is not None
    assert parsed(fast) == parsed(slow(data, default))
    assert answers(fast) == [("create", "logs", 201)] * len(SOURCES)
    assert all(ev[5]["index"] == "logs" for ev in parsed(fast))
    items = orjson.loads(fast.answer(0))["items"]
    ids = [doc["_id"] for item in items for doc in item.values()]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    "lines",
    [
        [CREATE, {"message": "a"}, {"delete": {"_id": "1"}}],
        [CREATE, {"message": "a"}, {"index": {}}, {"message": "b"}],
        [{"create": {"_index": "a"}}, {"message": "a"}, {"create": {"_index": "b"}}, {"m": 2}],
        [{"create": {"_id": "given"}}, {"message": "a"}],
        [CREATE, "not an object", CREATE, {"message": "kept"}],
        [CREATE],
    ],
    ids=["delete", "mixed-actions", "two-indices", "given-id", "bad", "no-source"],
)
def test_any_other_body_is_answered_item_by_item(lines: list[Any]) -> None:
    data = body(*lines)
    bulk = decode_bulk(data, "logs", MAX_LINE)
    assert bulk.run is None
    assert answers(bulk) == answers(slow(data, "logs"))
    assert parsed(bulk) == parsed(slow(data, "logs"))


FILEBEAT: dict[str, Any] = {
    "@timestamp": "2026-12-05T10:00:00.000Z",
    "message": "GET /health 200 (took {3ms})",
    "log": {"offset": 40, "file": {"path": "/var/log/app.log"}, "level": "info"},
    "input": {"type": "filestream"},
    "agent": {"type": "filebeat", "version": "8.17.0"},
    "ecs": {"version": "8.0.0"},
    "host": {"name": "web-1"},
    "service": {"name": "billing"},
}


@pytest.mark.parametrize("count", [1, 40])
def test_nested_ecs_documents_are_flattened_on_either_path(count: int) -> None:
    data = body(*[line for _ in range(count) for line in (CREATE, FILEBEAT)])
    bulk = decode_bulk(data, "filebeat", MAX_LINE)
    assert (bulk.run is not None) == (count == 1)  # 40 of them: past the fast path's cap
    events = parsed(bulk)
    assert events == parsed(slow(data, "filebeat"))
    _ts, level, service, host, message, fields = events[0]
    assert (level, service, host, message) == ("INFO", "billing", "web-1", FILEBEAT["message"])
    assert fields["log.file.path"] == "/var/log/app.log" and fields["index"] == "filebeat"


def test_a_brace_inside_a_string_keeps_the_source_as_sent() -> None:
    source = b'{"message":"panic in Close({0xc000, 0x3})","level":"error"}'
    bulk = decode_bulk(b'{"index":{}}\n' + source + b"\n", "go", MAX_LINE)
    assert bulk.texts == [source[:-1] + b',"index":"go"}']


def test_blank_lines_and_crlf_take_the_item_by_item_path_and_lose_nothing() -> None:
    data = b'{"create":{}}\r\n{"message":"a"}\r\n\n{"create":{}}\n{"message":"b"}\n\n'
    bulk = decode_bulk(data, "logs", MAX_LINE)
    assert [ev[4] for ev in parsed(bulk)] == ["a", "b"]
    assert answers(bulk) == [("create", "logs", 201)] * 2


def test_a_long_source_is_left_to_the_item_by_item_path_which_cuts_it() -> None:
    data = body(CREATE, {"message": "x" * 500}, CREATE, {"message": "short"})
    bulk = decode_bulk(data, "logs", 100)
    assert bulk.run is None
    assert bulk.truncated == 1
    assert len(bulk.texts[0]) == 100 and bulk.texts[0].endswith(b"...")


@pytest.mark.parametrize(
    "source",
    [b"{}", b"{      }", b'{"message":"x","n":1e400}', b'{"n":' + b"9" * 400 + b".0}"],
    ids=["empty", "empty-spaced", "infinite", "long-digits"],
)
def test_sources_the_parser_could_not_read_as_sent_are_not_stored_as_sent(source: bytes) -> None:
    data = b'{"create":{}}\n' + source + b'\n{"create":{}}\n{"message":"ok"}\n'
    bulk = decode_bulk(data, "logs", MAX_LINE)
    slow_bulk = slow(data, "logs")
    assert answers(bulk) == answers(slow_bulk)
    assert parsed(bulk) == parsed(slow_bulk)


BEATS = "errors,items.*.error,items.*.status"


@pytest.mark.parametrize(
    "filter_path",
    [
        BEATS,
        "items.*._id,took",
        "errors",
        "-items",
        "items.**.total",
        "-took,-items.*._shards",
        "x",
    ],
)
@pytest.mark.parametrize("uniform", [True, False])
def test_filter_path_gives_what_filtering_the_whole_answer_gives(
    filter_path: str, uniform: bool
) -> None:
    lines: list[Any] = [CREATE, {"message": "a"}, CREATE, {"message": "b"}]
    if not uniform:
        lines += [{"delete": {"_id": "1"}}]
    bulk = decode_bulk(body(*lines), "logs", MAX_LINE)
    assert (bulk.run is not None) == uniform
    keep = parse_filter(filter_path)
    assert keep is not None
    assert orjson.loads(bulk.answer(7, keep)) == keep.apply(orjson.loads(bulk.answer(7)))


def test_the_beats_filter_leaves_the_status_of_each_item_and_the_errors() -> None:
    lines: list[Any] = [CREATE, {"message": "a"}, CREATE, "bad"]
    bulk = decode_bulk(body(*lines), "logs", MAX_LINE)
    doc = orjson.loads(bulk.answer(3, parse_filter(BEATS)))
    assert doc["errors"] is True and "took" not in doc
    assert doc["items"][0] == {"create": {"status": 201}}
    assert doc["items"][1]["create"]["status"] == 400
    assert doc["items"][1]["create"]["error"]["type"] == "document_parsing_exception"
    ok = decode_bulk(body(CREATE, {"message": "a"}, CREATE, {"message": "b"}), "l", MAX_LINE)
    raw = ok.answer(3, parse_filter(BEATS))
    assert raw == b'{"errors":false,"items":[{"create":{"status":201}},{"create":{"status":201}}]}'


def test_a_blank_or_oversized_filter_is_bounded() -> None:
    assert parse_filter("") is None and parse_filter(" , ") is None
    keep = parse_filter(",".join(f"k{i}" for i in range(1000)))
    assert keep is not None and len(keep.keep) == 64


def test_a_hostile_filter_path_is_answered_at_once() -> None:
    # Once exponential (`**` runs) and backtracking (`*a*a*...b` against a long key):
    # seconds to minutes of the event loop. Now linear; pytest-timeout would catch a relapse.
    bulk = decode_bulk(body(CREATE, {"message": "a"}), "logs", MAX_LINE)
    for text in (".".join(["**"] * 600) + ".zz", "items.*a*a*a*a*a*a*a*a*b", "x," * 2000):
        keep = parse_filter(text)
        assert keep is not None
        assert orjson.loads(bulk.answer(1, keep)) == {}
    key = "a" * 256  # an unknown action is echoed back as a key
    data = b'{"' + key.encode() + b'":{}}\n{"message":"x"}\n'
    keep = parse_filter("items.*a*a*a*a*a*a*a*a*a*b")
    assert keep is not None
    assert orjson.loads(decode_bulk(data, "logs", MAX_LINE).answer(1, keep)) == {}
