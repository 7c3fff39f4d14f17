"""The query node's history source (scaleout/history.py) against the machine's
PostgreSQL (127.0.0.1:5432, database `test`, trust auth), each test in a schema
of its own, dropped after. Every filter is checked against expected ids and
against the embedded store's matcher (Query.matcher) over the same events."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from logcaster.event import Event
from logcaster.exceptions import QuerySyntaxError, QueryTimeout
from logcaster.query.model import Query
from logcaster.scaleout.history import (
    History,
    HistoryError,
    HistoryUnavailable,
    to_are,
    where_clause,
)
from logcaster.scaleout.schema import migrate
from tests.scaleout_helpers import BASE, pg_schema, schema_url

TODAY = dt.datetime.now(dt.UTC).date()

Row = tuple[
    int, float, str | None, str | None, str | None, str | None, str | None, str, dict[str, Any]
]

# (event_id, ts, level, service, host, pod, version, body, fields); node 7 unless in NODES.
# fmt: off
CORPUS: list[Row] = [
    (1, 100.0, "INFO", "api", "web1", None, None, "GET /users 200 took 5ms",
     {"status": 200, "user": "ann", "request_id": "r-1"}),
    (2, 200.0, "ERROR", "api", "web2", None, None, "db timeout after 100% load_avg",
     {"status": 500, "ok": False}),
    (3, 300.0, "WARN", "worker", "web1", None, None, "retry 3 of 5\nat Foo.bar(Foo.java:7)",
     {"secret": "enc:v1:abcd:xyz"}),
    (4, 400.0, "ERROR", "worker", None, "p-1", None, "100x load-avg", {"ok": True, "flag": "true"}),
    (5, 400.0, "DEBUG", None, None, None, None, "Timeout in cache C:\\temp", {"node": "given"}),
    (6, 500.0, "INFO", "api", "web3", None, "1.2", "a_b literal",
     {"ratio": 2.5, "tags": ["x"], "trace_id": "r-1"}),
]
# fmt: on
NODES = {5: -2}  # a node id past 2**63, stored as a negative bigint


@pytest.fixture
def url() -> Iterator[str]:
    """A fresh, migrated schema; the URL that works in it (its application_name is
    the schema's name, to find its connections in pg_stat_activity)."""
    with pg_schema() as name:
        there = schema_url(name, app=name)
        with psycopg.connect(there) as conn:
            migrate(conn, 1)
        yield there


@pytest.fixture
def corpus(url: str) -> str:
    with psycopg.connect(url) as conn:
        for eid, ts, level, service, host, pod, version, body, fields in CORPUS:
            conn.execute(
                "INSERT INTO events (node, event_id, day, ts, received_at, source, level,"
                " service, host, request_id, message, body, fields, version, pod)"
                " VALUES (%s, %s, %s, %s, %s, 'tcp', %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (NODES.get(eid, 7), eid, TODAY, ts, ts + 1, level, service, host,
                 request_id(fields), body.split("\n")[0], body, Jsonb(fields), version, pod),
            )  # fmt: skip
    return url


def request_id(fields: dict[str, Any]) -> str | None:
    """The `request_id` column as the writer fills it (scaleout/rows.py): the first
    id field found, whichever its name."""
    found = [str(fields[k]) for k in ("request_id", "req", "trace_id") if k in fields]
    return found[0] if found else None


@pytest.fixture
def history(corpus: str) -> Iterator[History]:
    h = History(corpus, timeout=5)
    h.check()
    yield h
    h.close()


def events() -> list[Event]:
    """The corpus as the embedded store holds it."""
    return [
        Event(eid, ts + 1, "tcp", body, body.split("\n")[0], ts, level, service, version,
              host, pod, dict(fields))
        for eid, ts, level, service, host, pod, version, body, fields in CORPUS
    ]  # fmt: skip


def ids(h: History, query: Query, limit: int = 100, max_count: int = 100) -> list[int]:
    return [ev.id for ev in h.search(query, limit=limit, max_count=max_count, timeout=5).rows]


def sessions(url: str) -> list[int]:
    """The backends of the History under test (its URL's application_name)."""
    name = url.rsplit("application_name=", 1)[1]
    with psycopg.connect(BASE, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (name,)
        ).fetchall()
    return [row[0] for row in rows]


FILTERS: list[tuple[Query, set[int]]] = [
    (Query(), {1, 2, 3, 4, 5, 6}),
    (Query(levels=frozenset({"ERROR", "WARN"})), {2, 3, 4}),
    (Query(services=frozenset({"worker"})), {3, 4}),
    (Query(time_from=200.0, time_to=400.0), {2, 3, 4, 5}),
    (Query(keywords=("load", "100")), {2, 4}),
    (Query(keywords=("timeout", "Timeout"), operator="OR"), {2, 5}),
    (Query(keywords=("timeout",)), {2}),  # case-sensitive, like the embedded store
    (Query(keywords=("100% load_avg",)), {2}),  # % and _ literal: not "100x load-avg"
    (Query(keywords=("a_b",)), {6}),
    (Query(keywords=("C:\\t",)), {5}),
    (Query(keywords=("nul\x00",)), set()),
    (Query(regex=r"^db .*load"), {2}),
    (Query(regex=r"(?i)TIMEOUT"), {2, 5}),
    (Query(regex=r"retry.*Foo"), set()),  # RE2's `.` skips newlines...
    (Query(regex=r"(?s)retry.*Foo"), {3}),  # ...unless (?s)
    (Query(regex=r"(?m)^at Foo"), {3}),
    (Query(regex=r"^at Foo"), set()),
    (Query(regex=r"\bload\b"), {4}),  # RE2's \b is ARE's \y
    (Query(regex=r"[^x]load"), {2, 4}),
    (Query(regex=r"\d+ms\z"), {1}),
    (Query(fields=(("host", "web1"),)), {1, 3}),
    (Query(fields=(("pod", "p-1"),)), {4}),
    (Query(fields=(("version", "1.2"),)), {6}),
    (Query(fields=(("message", "retry 3 of 5"),)), {3}),
    (Query(fields=(("request_id", "r-1"),)), {1}),  # not 6: its column holds its trace_id
    (Query(fields=(("trace_id", "r-1"),)), {6}),
    (Query(fields=(("status", "500"),)), {2}),  # a JSON number as text
    (Query(fields=(("user", "ann"), ("status", "200"))), {1}),
    (Query(fields=(("ratio", "2.5"),)), {6}),
    (Query(fields=(("ok", "True"),)), {4}),  # a JSON boolean as Python writes it
    (Query(fields=(("ok", "true"),)), set()),
    (Query(fields=(("flag", "true"),)), {4}),  # the string "true"
    (Query(fields=(("secret", "enc:v1:abcd"),)), {3}),  # sealed: a prefix
    (Query(fields=(("secret", "enc:v1:ab%"),)), set()),  # the prefix is escaped
    (Query(fields=(("secret", "enc:v1:abcd:xyz"),)), {3}),
    (Query(fields=(("missing", "x"),)), set()),
    (Query(levels=frozenset({"ERROR"}), keywords=("load",), fields=(("ok", "True"),)), {4}),
]


def describe(query: Query) -> str:
    """A stable test id (a frozenset's repr follows the run's string hashes)."""
    shown: list[str] = []
    for name in ("keywords", "operator", "regex", "levels", "services", "time_from", "time_to",
                 "fields"):  # fmt: skip
        value = getattr(query, name)
        if value not in ((), None, frozenset(), "AND"):
            shown.append(f"{name}={sorted(value) if isinstance(value, frozenset) else value!r}")
    return " ".join(shown) or "all"


@pytest.mark.parametrize(("query", "expected"), FILTERS, ids=[describe(q) for q, _ in FILTERS])
def test_each_filter_matches_what_the_embedded_store_matches(
    history: History, query: Query, expected: set[int]
) -> None:
    embedded = {ev.id for ev in events() if query.matcher()(ev)}
    assert embedded == expected
    result = history.search(query, limit=100, max_count=100, timeout=5)
    assert {ev.id for ev in result.rows} == expected
    assert result.count == len(expected)


def test_rows_are_the_stored_events(history: History) -> None:
    rows = {ev.id: ev for ev in history.search(Query(), limit=10, max_count=10, timeout=5).rows}
    for want in events():
        got = rows[want.id]
        node = f"{NODES.get(want.id, 7) & (2**64 - 1):016x}"
        assert {**got.to_dict(), "fields": {}} == {**want.to_dict(), "fields": {}}
        assert got.fields == {"node": node, **want.fields}
    assert rows[5].fields["node"] == "given"  # the event's own field is kept
    assert rows[1].fields["node"] == "0000000000000007"


def test_order_ties_limit_and_count(history: History) -> None:
    assert ids(history, Query()) == [6, 5, 4, 3, 2, 1]  # ts 400 twice: by id
    assert ids(history, Query(order="asc")) == [1, 2, 3, 4, 5, 6]
    assert ids(history, Query(), limit=2) == [6, 5]
    assert ids(history, Query(order="asc"), limit=3) == [1, 2, 3]
    result = history.search(Query(), limit=2, max_count=100, timeout=5)
    assert result.count == 6  # all matches, not the rows shown
    capped = history.search(Query(), limit=2, max_count=3, timeout=5)
    assert capped.count == 4 and len(capped.rows) == 2  # max_count + 1: the caller caps
    few = history.search(Query(), limit=10, max_count=2, timeout=5)
    assert few.count == 3 and len(few.rows) == 6
    none = history.search(Query(levels=frozenset({"ERROR"})), limit=0, max_count=5, timeout=5)
    assert none.rows == [] and none.count == 2


def test_keywords_and_regexes_can_use_the_trigram_index(corpus: str) -> None:
    for query in (Query(keywords=("100% load_avg",)), Query(regex="timeout after")):
        where, params = where_clause(query)
        explain = sql.SQL("EXPLAIN SELECT 1 FROM events WHERE {}").format(where)
        with psycopg.connect(corpus) as conn:
            conn.execute("SET enable_seqscan = off")
            plan = "\n".join(row[0] for row in conn.execute(explain, params))
        assert "Bitmap Index Scan on events_" in plan and "body_idx" in plan, plan


def test_a_bad_regex_is_a_syntax_error_with_postgresqls_reason(history: History) -> None:
    with pytest.raises(QuerySyntaxError, match="parentheses"):
        history.search(Query(regex="a("), limit=5, max_count=5, timeout=5)
    with pytest.raises(QuerySyntaxError, match="bad regex: invalid regular expression"):
        history.search(Query(regex=r"\pL+"), limit=5, max_count=5, timeout=5)  # RE2 only
    assert ids(history, Query(regex="load")) == [4, 2]  # the connection is still good


def test_to_are_translates_only_outside_brackets() -> None:
    assert to_are(r"a.b") == r"a[^\n]b"
    assert to_are(r"(?s)a.b") == r"a.b"
    assert to_are(r"(?ims)\ba\.[.\b]\B\z") == r"(?iw)\ya\.[.\b]\Y\Z"
    assert to_are(r"[]a.][^].][[:alpha:].]\b") == r"[]a.][^].][[:alpha:].]\y"
    assert to_are(r"(?U)a") == r"(?U)a"  # not ARE's: PostgreSQL refuses it


def test_check_reports_one_line_reasons(url: str) -> None:
    down = History("postgresql://postgres:secret@127.0.0.1:1/test", timeout=2)
    with pytest.raises(HistoryError, match=r"^postgresql://postgres@127.0.0.1:1/test: cannot "):
        down.check()  # the password is not shown
    with pytest.raises(HistoryUnavailable, match=r"^postgresql://postgres@127.0.0.1:1/test: can"):
        down.search(Query(), limit=1, max_count=1, timeout=2)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM logcaster_schema WHERE version = 2")
    with pytest.raises(HistoryError, match=r"schema version 1, run logcaster migrate$") as info:
        History(url, timeout=2).check()
    assert "\n" not in str(info.value) and "search_path" not in str(info.value)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE logcaster_schema")
    with pytest.raises(HistoryError, match=r"schema version 0, run logcaster migrate$"):
        History(url, timeout=2).check()


def test_a_statement_timeout_is_query_timeout(corpus: str) -> None:
    with psycopg.connect(corpus) as conn:
        conn.execute("DROP INDEX events_body_trgm")  # 50,000 rows' trigrams: 2 s to insert
        conn.execute(
            "INSERT INTO events (node, event_id, day, ts, received_at, source, message, body)"
            " SELECT 9, i, %s, i, i, 'tcp', 'm', md5(i::text) || repeat(' lorem ipsum', 20)"
            " FROM generate_series(1, 50000) AS i",
            (TODAY,),
        )
    h = History(corpus, timeout=5, connections=1)
    try:
        assert ids(h, Query(levels=frozenset({"WARN"}))) == [3]  # a warm connection
        slow = Query(regex=r"([a-z]+ )+Q")  # ~60 ms over the 50,000 bodies
        with pytest.raises(QueryTimeout, match=r"0\.01 s \(query\.timeout\)"):
            h.search(slow, limit=10, max_count=10, timeout=0.01)
        assert ids(h, Query(levels=frozenset({"WARN"}))) == [3]  # and still usable
        started = time.monotonic()
        assert h.search(slow, limit=10, max_count=10, timeout=10).count == 0
        assert time.monotonic() - started > 0.01  # PostgreSQL cancelled it: it ran out
    finally:
        h.close()


def test_terminated_connections_are_replaced(history: History, corpus: str) -> None:
    assert ids(history, Query(levels=frozenset({"WARN"}))) == [3]
    killed = sessions(corpus)
    assert len(killed) == 1
    with psycopg.connect(BASE, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (killed,))
    deadline = time.monotonic() + 5
    while set(killed) & set(sessions(corpus)) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ids(history, Query(levels=frozenset({"WARN"}))) == [3]  # retried on a new one
    now = sessions(corpus)
    assert len(now) == 1 and not set(now) & set(killed)


def test_concurrent_searches_share_a_bounded_pool(history: History, corpus: str) -> None:
    seen: set[int] = set()
    lock = threading.Lock()

    def work(n: int) -> bool:
        for i in range(10):
            query, expected = FILTERS[(n * 10 + i) % len(FILTERS)]
            if set(ids(history, query)) != expected:
                return False
            with lock:
                seen.update(sessions(corpus))
        return True

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(work, range(8)))
    assert 1 <= len(sessions(corpus)) <= 4 and len(seen) <= 4
    history.close()
    deadline = time.monotonic() + 5
    while sessions(corpus) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sessions(corpus) == []
    with pytest.raises(HistoryUnavailable, match="closed"):
        ids(history, Query())
