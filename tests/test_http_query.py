"""`GET /api/v1/query` over real sockets (aiohttp's client, curl): the line
protocol's QUERY parameters, answers and errors, busy as 429, limits as 400."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import aiohttp
import orjson
import pytest

from logcaster.testing import ServerProcess, start_server
from tests.http_query_helpers import Params, curl, get_async, http_query, line_json
from tests.lineproto_helpers import CORPUS, NEWEST_FIRST, T0

# Each parameter of QUERY, alone and combined, repeats and field equality:
# the HTTP answer must be the line protocol's `JSON QUERY` document.
SAME_AS_LINE: list[Params] = [
    [],
    [("keyword", "pool exhausted")],
    [("keyword", "pool"), ("keyword", "again")],  # a repeated key adds a keyword
    [("keywords", "JWT,disk"), ("operator", "OR")],
    [("keywords", "pool,exhausted"), ("operator", "and")],
    [("regex", r"p95=\d+ms")],
    [("regex", "^\\[(ERROR|FATAL)\\]")],
    [("level", "ERROR")],
    [("level", "ERROR"), ("level", "FATAL")],  # repeated: both levels
    [("level", "error,warn")],
    [("service", "payment-api")],
    [("service", "payment-api,auth-service"), ("level", "ERROR")],
    [("time_from", str(T0 + 2)), ("time_to", "2026-01-19T15:30:05Z")],
    [("time_from", "2026-01-19T17:30:06+02:00")],
    [("limit", "2")],
    [("limit", "0")],
    [("limit", "5"), ("limit", "1")],  # the last one wins
    [("order", "asc"), ("limit", "3")],
    [("max_count", "2")],
    [("max_count", str(2**63 - 1))],  # the largest
    [("source", "memory")],
    [("user_id", "user-7")],  # any other name: field equality
    [("request_id", "req-1"), ("level", "FATAL")],
    [("pod", "pay-1")],  # an event attribute
    [("no_such_field", "x")],
    [("format", "json"), ("level", "WARN")],
    [("Level", "ERROR"), ("LIMIT", "1")],  # names are case-insensitive, as on the line
]

# Refused by the parser or its limits, with the line protocol's message.
ERRORS: list[Params] = [
    [("regex", "(")],  # bad regex
    [("regex", "a" * 5000)],  # over query.max_pattern_bytes
    [("regex", "(" * 40 + ")" * 40)],  # over query.max_pattern_depth
    [("keywords", ",".join(f"k{i}" for i in range(70)))],  # over query.max_keywords
    [("level", "LOUD")],
    [("limit", "-1")],
    [("limit", "ten")],
    [("max_count", "0")],
    [("max_count", str(2**64))],  # was a 500: a JSON answer cannot carry it
    [("keyword", "")],
    [("order", "sideways")],
    [("operator", "XOR")],
    [("source", "disk")],
    [("time_from", "yesterday")],
    [("time_from", "nan")],
    [("time_from", str(T0 + 5)), ("time_to", str(T0))],
    [("source", "store")],  # the store is off: a limit reached while running
]


@pytest.mark.parametrize("params", SAME_AS_LINE, ids=lambda p: "&".join(f"{k}={v}" for k, v in p))
def test_answer_is_the_line_protocols(corpus_server: ServerProcess, params: Params) -> None:
    reply = http_query(corpus_server, params)
    assert reply.status == 200, reply.body
    assert reply.headers["Content-Type"] == "application/json"
    doc = reply.json()
    assert doc == line_json(corpus_server, params)
    assert set(doc) == {"found", "returned", "capped", "max_count", "events"}
    assert doc["returned"] == len(doc["events"])


def test_default_query_lists_the_corpus_newest_first(corpus_server: ServerProcess) -> None:
    doc = http_query(corpus_server).json()
    assert doc["found"] == len(CORPUS)
    bodies = [ev["body"] for ev in doc["events"]]
    assert bodies == [next(d.text for d in CORPUS if d.name == n) for n in NEWEST_FIRST]
    first = doc["events"][0]
    assert set(first) == {
        "id",
        "ts",
        "received_at",
        "level",
        "service",
        "version",
        "host",
        "pod",
        "message",
        "body",
        "fields",
        "source",
    }


def test_field_equality(corpus_server: ServerProcess) -> None:
    doc = http_query(corpus_server, [("user_id", "user-9")]).json()
    assert doc["found"] == 2
    assert all(ev["fields"]["user_id"] == "user-9" for ev in doc["events"])
    assert (
        http_query(corpus_server, [("user_id", "user-9"), ("level", "ERROR")]).json()["found"] == 2
    )
    assert http_query(corpus_server, [("user_id", "nobody")]).json()["found"] == 0


@pytest.mark.parametrize("params", ERRORS, ids=lambda p: "&".join(f"{k}={v[:20]}" for k, v in p))
def test_errors_are_400_with_the_line_protocols_message(
    corpus_server: ServerProcess, params: Params
) -> None:
    reply = http_query(corpus_server, params)
    assert reply.status == 400, reply.body
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.json() == line_json(corpus_server, params)


@pytest.mark.parametrize("name", ["a b", "a=b", 'a"b', "a'b", ""])
def test_a_name_the_line_protocol_cannot_carry_is_400(
    corpus_server: ServerProcess, name: str
) -> None:
    reply = http_query(corpus_server, [(name, "x")])
    assert reply.status == 400
    assert reply.json() == {"error": f"Invalid query syntax: bad parameter name {name!r}"}


def test_head_and_other_methods_are_405(corpus_server: ServerProcess) -> None:
    # HEAD too: aiohttp would write a streamed answer's body after the headers.
    url = f"http://127.0.0.1:{corpus_server.ports['http']}/api/v1/query"
    for how in (["-I"], ["-X", "POST"], ["-X", "DELETE"]):
        reply = curl(*how, "-o", "/dev/null", "-w", "%{http_code}", "-m", "10", url)
        assert reply.stdout == b"405", how


def test_scan_limit_is_400() -> None:
    server = start_server(env=_env(QUERY__MAX_SCAN="3"))
    try:
        server.send(b"".join(b"line %d\n" % i for i in range(10)))
        server.wait_total(10)
        # With a regex the scan limit is checked at every event.
        reply = http_query(server, [("regex", "line")])
        assert reply.status == 400
        assert reply.json() == {"error": "query exceeded its scan limit of 3 events"}
        assert reply.json() == line_json(server, [("regex", "line")])
    finally:
        server.kill()


def test_curl(corpus_server: ServerProcess) -> None:
    base = f"http://127.0.0.1:{corpus_server.ports['http']}/api/v1/query"
    ok = curl("-G", base, "--data-urlencode", "keyword=pool exhausted", "-w", "\n%{http_code}")
    body, _, status = ok.stdout.rpartition(b"\n")
    assert status == b"200"
    assert orjson.loads(body) == line_json(corpus_server, [("keyword", "pool exhausted")])
    bad = curl("-G", base, "--data-urlencode", "regex=(", "-w", "\n%{http_code} %{content_type}")
    body, _, tail = bad.stdout.rpartition(b"\n")
    assert tail == b"400 application/json"
    assert orjson.loads(body)["error"].startswith("Invalid query syntax: bad regex")


# --- busy --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def one_query_server() -> Iterator[ServerProcess]:
    """One query thread, nothing may wait, and 200,000 events to scan."""
    env = _env(QUERY__MAX_CONCURRENT="1", QUERY__MAX_WAITING="0", MEMORY__CAPACITY="200000")
    server = start_server(env=env)
    try:
        server.send(b"".join(b"event %d user_id=u%d\n" % (i, i % 97) for i in range(200_000)))
        server.wait_total(200_000)
        yield server
    finally:
        server.kill()


def test_busy_is_429_with_retry_after(one_query_server: ServerProcess) -> None:
    # A field test no event passes: every query scans all 200,000 events. Of
    # queries sent at once, all but the one running are over the limit.
    params = [("no_such_field", "x")]

    async def burst() -> list[tuple[int, str | None, bytes]]:
        async with aiohttp.ClientSession() as session:
            replies = await asyncio.gather(
                *(get_async(session, one_query_server, "/api/v1/query", params) for _ in range(16))
            )
        return [(r.status, r.headers.get("Retry-After"), r.body) for r in replies]

    for _ in range(20):  # each burst nearly always shows it; a few tries make it certain
        replies = asyncio.run(burst())
        assert {status for status, _, _ in replies} <= {200, 429}
        busy = [(after, body) for status, after, body in replies if status == 429]
        if busy:
            break
    assert busy, "no query was refused as busy"
    after, body = busy[0]
    assert after == "1"
    assert orjson.loads(body) == {"error": "busy: too many queries running; try again"}
    # The slot frees again: the next query is answered.
    assert http_query(one_query_server, params).json()["found"] == 0


def _env(**options: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({f"LOGCASTER_{k}": v for k, v in options.items()})
    return env
