"""QUERY and its shorthands over the TCP line query protocol (SPEC §6).

Which events of the known corpus answer each parameter (level, service,
keywords, regex, time range, fields, order, limit), in which order, and the
exact syntax errors; RE2 keeps pathological regexes fast. Read-only tests share
the module-scoped `corpus_server` (conftest.py).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from logcaster.testing import ServerProcess
from tests.lineproto_helpers import NEWEST_FIRST, ROW, T0, found, ingest, parse_found

# --- QUERY and its parameters ------------------------------------------------------------

QUERIES: list[tuple[str, str]] = [
    # no parameter: everything, newest first
    ("QUERY", NEWEST_FIRST),
    # level: one, a list, aliases, any case; stored levels are normalized (ERR -> ERROR)
    ("QUERY level=ERROR", "HGDB"),
    ("QUERY level=error,fatal", "HGFDB"),
    ("QUERY level=ERROR level=FATAL", "HGFDB"),
    ("QUERY level=WARN", "C"),
    ("QUERY level=WARNING", "C"),
    ("QUERY level=CRITICAL", "F"),
    ("QUERY level=ERR", "HGDB"),
    ("QUERY level=INFO", "A"),
    ("QUERY level=DEBUG", "E"),
    ("QUERY level=TRACE", ""),
    # service: one or a list
    ("QUERY service=payment-api", "FCB"),
    ("QUERY service=payment-api,auth-service", "FDCB"),
    ("QUERY service=payment", ""),
    # keywords: exact, case-sensitive substrings of the whole body
    ("QUERY keyword=pool", "FB"),
    ("QUERY keyword=Pool", ""),
    ('QUERY keyword="pool exhausted"', "FB"),
    ('QUERY keyword="Connection pool exhausted"', "B"),
    ("QUERY keyword='pool exhausted again'", "F"),
    ("QUERY keyword=SQLTimeoutException", "H"),
    ("QUERY keyword=pool keyword=again", "F"),
    ("QUERY keywords=pool,again", "F"),
    ("QUERY keywords=pool,again operator=AND", "F"),
    ("QUERY keywords=JWT,warmed", ""),
    ("QUERY keywords=JWT,warmed operator=OR", "ED"),
    ("QUERY keywords=JWT,warmed operator=or", "ED"),
    ("QUERY keywords=pool,JWT,nothing-like-this operator=OR", "FDB"),
    # regex (RE2), unquoted or quoted, on the whole body
    (r"QUERY regex=exhausted\s+again", "F"),
    (r'QUERY regex="^\[(ERROR|FATAL)\]"', "HFDB"),
    ('QUERY regex="token validation"', "D"),
    (r"QUERY regex=Inventory\.java:\d+", "H"),
    ("QUERY regex=^warmed", ""),
    # time range on event time: unix seconds (also fractional) or ISO 8601, inclusive
    (f"QUERY time_from={T0 + 2} time_to={T0 + 4}", "EDC"),
    (f"QUERY time_from={T0 + 4} time_to={T0 + 4}", "E"),
    (f"QUERY time_to={T0 + 1.5}", "BA"),
    (f"QUERY time_from={T0 + 5.5}", "HGF"),
    ("QUERY time_from=2026-01-19T15:30:05", "HGF"),
    ("QUERY time_from=2026-01-19T15:30:05Z", "HGF"),
    ("QUERY time_from=2026-01-19T17:30:05+02:00", "HGF"),
    ("QUERY time_to=2026-01-19T15:30:01", "A"),
    ('QUERY time_from="2026-01-19 15:30:05"', "HGF"),
    ("QUERY time_from=2026-01-19T15:30:03 time_to=2026-01-19T15:30:06", "GFED"),
    ("QUERY time_from=2026-01-20T00:00:00", ""),
    # field equality: logfmt fields and event attributes
    ("QUERY request_id=req-1", "FA"),
    ("QUERY user_id=user-7", "BA"),
    ("QUERY user_id=user-9 level=ERROR", "GD"),
    ("QUERY p95=1250ms", "C"),
    ("QUERY pod=pay-1", "FB"),
    ("QUERY request_id=req-404", ""),
    # order
    ("QUERY order=asc", NEWEST_FIRST[::-1]),
    ("QUERY order=desc", NEWEST_FIRST),
    ("QUERY order=ASC request_id=req-1", "AF"),
    # several parameters together
    ("QUERY level=ERROR,FATAL service=payment-api keyword=pool", "FB"),
    (f"QUERY service=payment-api time_from={T0 + 2} order=asc", "CF"),
    # lower-case verb and parameter names
    ("query level=error", "HGDB"),
    ("QUERY LEVEL=ERROR", "HGDB"),
    # the shorthands
    ("SEARCH pool exhausted", "FB"),
    ('SEARCH "pool exhausted"', "FB"),
    ("search JWT", "D"),
    ("SEARCH nothing-like-this", ""),
    ("FILTER level=ERROR service=payment-api", "B"),
    ("filter level=FATAL", "F"),
    ("FILTER request_id=req-1 order=asc", "AF"),
    (r"REGEX ^\[(ERROR|FATAL)\]", "HFDB"),
    (r"REGEX exhausted\s+again", "F"),
    ("REGEX pool exhausted", "FB"),
    ("RECENT", NEWEST_FIRST),
    ("RECENT 100", NEWEST_FIRST),
]


@pytest.mark.parametrize(("command", "names"), QUERIES)
def test_query(corpus_server: ServerProcess, command: str, names: str) -> None:
    assert corpus_server.query(command) == found(names)


@pytest.mark.parametrize(
    ("command", "names", "total"),
    [
        ("QUERY limit=2", "HG", 8),
        ("QUERY limit=0", "", 8),
        ("QUERY level=ERROR limit=3", "HGD", 4),
        ("QUERY order=asc limit=3", "ABC", 8),
        ("QUERY limit=1 order=asc level=ERROR", "B", 4),
        ("QUERY limit=1000", NEWEST_FIRST, 8),
        ("RECENT 3", "HGF", 8),
        ("recent 1", "H", 8),
    ],
)
def test_found_counts_every_match_not_only_the_rows(
    corpus_server: ServerProcess, command: str, names: str, total: int
) -> None:
    assert corpus_server.query(command) == found(names, total)


def test_default_limit_is_100(server: ServerProcess) -> None:
    ingest(server, [f"hello {i}" for i in range(150)])
    total, rows = parse_found(server.query("QUERY keyword=hello max_count=1000"))
    assert total == 150
    assert len(rows) == 100
    texts = [row[row.index("] ") + 2 :] for row in rows]
    assert texts == [f"hello {i}" for i in range(149, 49, -1)]
    total, rows = parse_found(server.query("QUERY max_count=150"))
    assert (total, len(rows)) == (150, 100)
    total, rows = parse_found(server.query("QUERY limit=150 max_count=150"))
    assert (total, len(rows)) == (150, 150)
    # Past max_count (default 100) memory says "100+", like the store (issue 14).
    head = server.query("QUERY keyword=hello limit=1").splitlines()[0]
    assert head == "FOUND: 100+ matches (counting stops at max_count=100)"


def test_row_time_is_receive_time_for_a_line_without_one(server: ServerProcess) -> None:
    before = time.time()
    ingest(server, ["a line without any time"])
    after = time.time()
    _, rows = parse_found(server.query("SEARCH without any time"))
    assert len(rows) == 1
    m = ROW.fullmatch(rows[0])
    assert m is not None, rows[0]
    assert m.group(2) == "a line without any time"
    shown = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()
    assert int(before) <= shown <= after  # UTC, truncated to the second


# --- RE2: no catastrophic backtracking -----------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        'QUERY regex="(a+)+$"',
        "REGEX (a+)+$",
        "QUERY regex=(a|aa)+$",
        "QUERY regex=(a|a)+$",
    ],
)
def test_pathological_regex_answers_correctly(server: ServerProcess, command: str) -> None:
    # Backtracking engines take exponential time on a long run of a's followed by b.
    evil = "a" * 30_000 + "b"
    ingest(server, [evil, "aaaa"])
    assert server.query(command, timeout=30) == f"FOUND: 1 matches\n{only_row(server, 'aaaa')}\n"


def only_row(server: ServerProcess, text: str) -> str:
    """The row the server shows for the one event whose first line is `text`."""
    _, rows = parse_found(server.query(f"QUERY order=asc keyword={text}"))
    matching = [row for row in rows if row.endswith("] " + text)]
    assert len(matching) == 1, rows
    return matching[0]


# --- invalid QUERY syntax ----------------------------------------------------------------

_INVALID = "ERROR: Invalid query syntax: "


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("QUERY level", "expected key=value"),
        ("QUERY level=ERROR service", "expected key=value"),
        ('QUERY keyword="pool exhausted', "unterminated quote"),
        ("QUERY keyword='pool", "unterminated quote"),
        ("QUERY regex=(a", "bad regex"),
        ('QUERY regex="(a"', "bad regex"),
        ("QUERY level=LOUD", "unknown level"),
        ("QUERY level=ERROR,LOUD", "unknown level"),
        ("QUERY limit=abc", "limit"),
        ("QUERY limit=-1", "limit"),
        ("QUERY operator=XOR", "operator"),
        (
            "QUERY time_from=2026-01-19T16:00:00 time_to=2026-01-19T15:00:00",
            "time_from is after time_to",
        ),
        (f"QUERY time_from={T0 + 10} time_to={T0}", "time_from is after time_to"),
        ("QUERY time_from=yesterday", "time_from"),
        ("QUERY time_to=2026-13-45", "time_to"),
        ("QUERY time_from=nan", "time_from"),
        ("QUERY time_to=inf", "time_to"),
        ("QUERY time_from=-Infinity", "time_from"),
        ("QUERY order=sideways", "order"),
        ("QUERY format=xml", "format"),
        ("FILTER", "FILTER"),
        ("SEARCH", "SEARCH"),
        ("REGEX (a", "bad regex"),
        ("REGEX", "REGEX"),
        ("RECENT abc", "RECENT"),
        ("RECENT 0", "RECENT"),
        ("RECENT -3", "RECENT"),
        ("COUNT now", "COUNT"),
    ],
)
def test_invalid_query_syntax(corpus_server: ServerProcess, command: str, reason: str) -> None:
    reply = corpus_server.query(command)
    assert reply.startswith(_INVALID), reply
    assert reply.endswith("\n") and reply.count("\n") == 1, reply
    assert reason in reply[len(_INVALID) :], reply
