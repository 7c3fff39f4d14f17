"""The TCP line query protocol (SPEC §6) against the real server over real sockets.

Read-only queries share one module-scoped server loaded with a small corpus of
known events; tests that change the buffer (CLEAR, eviction, STATS counters) get
a fresh server each. Replies are compared as exact strings: the protocol is
what the original LogCaster clients parse.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from logcaster.testing import ServerProcess, start_server, wait_for
from tests.conftest import ServerFactory

# --- the corpus ----------------------------------------------------------------------


@dataclass(frozen=True)
class Doc:
    name: str
    utc: str  # the event time the row must show, "YYYY-MM-DD HH:MM:SS" in UTC
    text: str  # what is sent; the first line is what the row must show

    @property
    def first_line(self) -> str:
        return self.text.split("\n", 1)[0]

    @property
    def row(self) -> str:
        return f"[{self.utc}] {self.first_line}"


# 2026-01-19 15:30:00 UTC: every corpus time is an offset from it.
T0 = int(datetime(2026, 1, 19, 15, 30, 0, tzinfo=UTC).timestamp())

# Sent in this order, so arrival order and event-time order agree (newest = H).
CORPUS = (
    Doc(
        "A",
        "2026-01-19 15:30:00",
        "[INFO] 2026-01-19 15:30:00.000 order-service/v1.8.4 pod/order-1: "
        "Order processed request_id=req-1 user_id=user-7",
    ),
    Doc(
        "B",
        "2026-01-19 15:30:01",
        "[ERROR] 2026-01-19 15:30:01.234 payment-api/v2.3.1 pod/pay-1: "
        "Connection pool exhausted request_id=req-2 user_id=user-7",
    ),
    Doc(
        "C",
        "2026-01-19 15:30:02",
        "[WARNING] 2026-01-19 15:30:02.500 payment-api/v2.3.1 pod/pay-2: "
        "Response time degraded p95=1250ms request_id=req-3",
    ),
    Doc(
        "D",
        "2026-01-19 15:30:03",
        "[ERROR] 2026-01-19 15:30:03.000 auth-service/v1.0.0 pod/auth-1: "
        "JWT token validation failed user_id=user-9",
    ),
    Doc("E", "2026-01-19 15:30:04", "[DEBUG] 2026-01-19 15:30:04.000 cache-service/v0.1.0: warmed"),
    Doc(
        "F",
        "2026-01-19 15:30:05",
        "[FATAL] 2026-01-19 15:30:05.999 payment-api/v2.3.1 pod/pay-1: "
        "pool exhausted again request_id=req-1",
    ),
    # A zone offset: the row shows the time in UTC (17:30 at +02:00 is 15:30Z).
    Doc(
        "G", "2026-01-19 15:30:06", "2026-01-19T17:30:06+02:00 ERR: disk nearly full user_id=user-9"
    ),
    # A multi-line event: one event, the row shows only its first line.
    Doc(
        "H",
        "2026-01-19 15:30:07",
        "[ERROR] 2026-01-19 15:30:07.000 inventory-service/v3.0.0 pod/inv-1: Stock sync failed\n"
        "    at com.shop.Inventory.sync(Inventory.java:42)\n"
        "Caused by: java.sql.SQLTimeoutException: lock timeout",
    ),
)
BY_NAME = {doc.name: doc for doc in CORPUS}
NEWEST_FIRST = "HGFEDCBA"

_FOUND = re.compile(r"FOUND: (\d+) matches\n")
_ROW = re.compile(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\] (.*)")
_INVALID = "ERROR: Invalid query syntax: "


def found(names: str, total: int | None = None) -> str:
    """The exact reply listing the corpus events `names` (in that order)."""
    n = len(names) if total is None else total
    return f"FOUND: {n} matches\n" + "".join(BY_NAME[name].row + "\n" for name in names)


def parse_found(reply: str) -> tuple[int, list[str]]:
    """`FOUND: n matches` and the rows after it."""
    m = _FOUND.match(reply)
    assert m is not None, reply[:200]
    assert reply.endswith("\n")
    rows = reply[m.end() :].split("\n")[:-1]
    return int(m.group(1)), rows


# --- helpers -------------------------------------------------------------------------


def ingest(server: ServerProcess, lines: Sequence[str], events: int | None = None) -> None:
    """Send `lines` on one connection (closed: everything flushed) and wait until counted."""
    before = int(server.stats()["Total"])
    server.send(("\n".join(lines) + "\n").encode())
    server.wait_total(before + (len(lines) if events is None else events))


def raw_exchange(port: int, data: bytes, shutdown: bool = True) -> str:
    """Send raw bytes to the query port (optionally half-closing) and read to EOF."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        if data:
            sock.sendall(data)
        if shutdown:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


@pytest.fixture(scope="module")
def corpus() -> Iterator[ServerProcess]:
    """A server holding exactly the corpus; tests using it must not change it."""
    server = start_server()
    try:
        server.send(("\n".join(doc.text for doc in CORPUS) + "\n").encode())
        server.wait_total(len(CORPUS))
        yield server
    finally:
        server.kill()


# --- the README example ----------------------------------------------------------------

README_LINE = (
    "[ERROR] 2026-01-19 15:30:01.234 payment-api/v2.3.1 pod/payment-api-7d8f9c-abc123: "
    "Connection pool exhausted"
)


def test_readme_example(server: ServerProcess) -> None:
    server.send(README_LINE.encode() + b"\n")
    server.wait_total(1)
    assert server.query("QUERY level=ERROR service=payment-api") == (
        f"FOUND: 1 matches\n[2026-01-19 15:30:01] {README_LINE}\n"
    )


def test_readme_example_through_netcat(server: ServerProcess) -> None:
    """`printf … | nc` to ingest, `echo … | nc` to query, with the real OpenBSD netcat."""
    nc = shutil.which("nc")
    assert nc is not None, "nc is missing: run scripts/test-deps"
    subprocess.run(
        [nc, "-N", "127.0.0.1", str(server.ingest_port)],
        input=README_LINE.encode() + b"\n",
        check=True,
        capture_output=True,
        timeout=10,
    )
    server.wait_total(1)
    count = subprocess.run(
        [nc, "127.0.0.1", str(server.query_port)],
        input=b"COUNT\n",
        check=True,
        capture_output=True,
        timeout=10,
    )
    assert count.stdout == b"COUNT: 1\n"
    reply = subprocess.run(
        [nc, "127.0.0.1", str(server.query_port)],
        input=b"QUERY level=ERROR service=payment-api\n",
        check=True,
        capture_output=True,
        timeout=10,
    )
    assert reply.stdout.decode() == f"FOUND: 1 matches\n[2026-01-19 15:30:01] {README_LINE}\n"


# --- COUNT, STATS, HELP ------------------------------------------------------------------


def test_count(server: ServerProcess) -> None:
    assert server.query("COUNT") == "COUNT: 0\n"
    ingest(server, ["hello 1", "hello 2", "hello 3"])
    assert server.query("COUNT") == "COUNT: 3\n"


@pytest.mark.parametrize("command", ["count", "Count", "  COUNT  ", "COUNT\r"])
def test_commands_are_case_insensitive_and_trimmed(corpus: ServerProcess, command: str) -> None:
    assert corpus.query(command) == f"COUNT: {len(CORPUS)}\n"


def test_command_without_newline_then_eof_is_answered(corpus: ServerProcess) -> None:
    assert raw_exchange(corpus.query_port, b"COUNT") == f"COUNT: {len(CORPUS)}\n"
    assert raw_exchange(corpus.query_port, b"QUERY level=FATAL") == found("F")


_STATS = re.compile(
    r"STATS: Total=(\d+), Dropped=(\d+), Current=(\d+), Clients=(\d+)"
    r"((?:, [A-Za-z]+=\d+(?:\.\d+)?)*)\n"
)


def stats_pairs(reply: str) -> list[tuple[str, str]]:
    """The `Name=value` pairs of a STATS reply, in order; fails unless well-formed."""
    assert _STATS.fullmatch(reply), reply
    body = reply[len("STATS: ") : -1]
    return [(k, v) for k, _, v in (pair.partition("=") for pair in body.split(", "))]


def test_stats_format_and_counters(server: ServerProcess) -> None:
    pairs = stats_pairs(server.query("STATS"))
    assert pairs[:4] == [("Total", "0"), ("Dropped", "0"), ("Current", "0"), ("Clients", "0")]
    ingest(server, [f"hello {i}" for i in range(7)])
    pairs = stats_pairs(server.query("STATS"))
    assert pairs[:4] == [("Total", "7"), ("Dropped", "0"), ("Current", "7"), ("Clients", "0")]
    extra = dict(pairs[4:])
    assert extra["Delivered"] == "7"
    assert extra["Evicted"] == "0"
    assert len(dict(pairs)) == len(pairs), "a STATS name is repeated"


def test_stats_clients_counts_open_idle_ingest_connections(server: ServerProcess) -> None:
    ingest(server, ["hello 1", "hello 2"])
    with (
        socket.create_connection(("127.0.0.1", server.ingest_port)),
        socket.create_connection(("127.0.0.1", server.ingest_port)),
    ):
        wait_for("two clients", server.stats, lambda s: s["Clients"] == 2)
        reply = server.query("STATS")
        assert reply.startswith("STATS: Total=2, Dropped=0, Current=2, Clients=2, "), reply
    # Query connections are not ingest clients; closed ingest connections stop counting.
    stats = wait_for("no clients", server.stats, lambda s: s["Clients"] == 0)
    assert stats["Total"] == 2


def test_help_mentions_every_command(corpus: ServerProcess) -> None:
    reply = corpus.query("HELP")
    assert reply.endswith("\n")
    lines = reply.splitlines()
    assert len(lines) >= 5
    assert not reply.startswith("ERROR")
    for word in (
        "COUNT",
        "STATS",
        "QUERY",
        "SEARCH",
        "FILTER",
        "REGEX",
        "RECENT",
        "CLEAR",
        "HELP",
        "JSON",
    ):
        assert word in reply, f"HELP does not mention {word}"
    for param in ("keyword=", "keywords=", "operator=", "regex=", "level=", "service=", "limit="):
        assert param in reply, f"HELP does not mention {param}"
    assert "time_from" in reply and "time_to" in reply and "order=" in reply
    assert corpus.query("help") == reply


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
def test_query(corpus: ServerProcess, command: str, names: str) -> None:
    assert corpus.query(command) == found(names)


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
    corpus: ServerProcess, command: str, names: str, total: int
) -> None:
    assert corpus.query(command) == found(names, total)


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
    m = _ROW.fullmatch(rows[0])
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


# --- CLEAR and the memory buffer ---------------------------------------------------------


def test_clear(server: ServerProcess) -> None:
    ingest(server, ["hello 1", "hello 2", "hello 3"])
    assert server.query("CLEAR") == "OK: cleared 3 events\n"
    assert server.query("COUNT") == "COUNT: 0\n"
    assert server.query("RECENT") == "FOUND: 0 matches\n"
    assert server.query("clear") == "OK: cleared 0 events\n"
    pairs = stats_pairs(server.query("STATS"))
    assert pairs[:3] == [("Total", "3"), ("Dropped", "0"), ("Current", "0")]
    ingest(server, ["hello 4", "hello 5"])
    assert server.query("COUNT") == "COUNT: 2\n"
    assert json.loads(server.query("JSON CLEAR")) == {"cleared": 2}
    assert server.query("COUNT") == "COUNT: 0\n"


@pytest.mark.parametrize("chunks", [[8], [3, 3, 2], [1] * 8], ids=["one", "three", "eight"])
def test_buffer_keeps_the_newest_events(server_factory: ServerFactory, chunks: list[int]) -> None:
    server = server_factory("--buffer-size", "5")
    n = 0
    for size in chunks:  # each chunk on its own connection: its own batch(es)
        ingest(server, [f"event {i}" for i in range(n + 1, n + size + 1)])
        n += size
    assert server.query("COUNT") == "COUNT: 5\n"
    total, rows = parse_found(server.query("RECENT"))
    assert total == 5
    assert [row.split("] ", 1)[1] for row in rows] == [f"event {i}" for i in range(8, 3, -1)]
    assert all(_ROW.fullmatch(row) for row in rows)
    total, rows = parse_found(server.query("QUERY order=asc"))
    assert [row.split("] ", 1)[1] for row in rows] == [f"event {i}" for i in range(4, 9)]
    stats = dict(stats_pairs(server.query("STATS")))
    assert (stats["Total"], stats["Current"], stats["Evicted"]) == ("8", "5", "3")
    assert server.query("SEARCH event 3") == "FOUND: 0 matches\n"


# --- JSON output -------------------------------------------------------------------------


def one_json_line(reply: str) -> Any:
    assert reply.endswith("\n") and reply.count("\n") == 1, reply[:200]
    return json.loads(reply)


def test_json_query(corpus: ServerProcess) -> None:
    doc = one_json_line(corpus.query("JSON QUERY level=ERROR limit=2"))
    assert doc["found"] == 4
    assert doc["returned"] == 2
    events = doc["events"]
    assert [ev["body"] for ev in events] == [BY_NAME["H"].text, BY_NAME["G"].text]
    h, g = events
    assert h["id"] > g["id"]
    assert h["level"] == g["level"] == "ERROR"
    assert h["ts"] == T0 + 7
    assert g["ts"] == T0 + 6
    assert h["service"] == "inventory-service"
    assert h["version"] == "v3.0.0"
    assert h["pod"] == "inv-1"
    assert h["message"] == "Stock sync failed"
    assert g["fields"]["user_id"] == "user-9"
    assert {"received_at", "source", "host"} <= set(h)
    # the same answer through every JSON spelling
    assert one_json_line(corpus.query("QUERY level=ERROR limit=2 format=json")) == doc
    assert one_json_line(corpus.query("json query level=ERROR limit=2")) == doc
    assert one_json_line(corpus.query("FILTER level=ERROR limit=2 format=JSON")) == doc


def test_json_query_fields(corpus: ServerProcess) -> None:
    doc = one_json_line(corpus.query("JSON QUERY request_id=req-1 order=asc"))
    assert doc["found"] == doc["returned"] == 2
    a, f = doc["events"]
    assert a["fields"] == {"request_id": "req-1", "user_id": "user-7"}
    assert (a["level"], a["service"], a["pod"]) == ("INFO", "order-service", "order-1")
    assert (f["level"], f["service"]) == ("FATAL", "payment-api")
    assert f["fields"]["request_id"] == "req-1"


def test_json_shorthands(corpus: ServerProcess) -> None:
    doc = one_json_line(corpus.query("JSON RECENT 1"))
    assert (doc["found"], doc["returned"]) == (len(CORPUS), 1)
    assert doc["events"][0]["body"] == BY_NAME["H"].text
    doc = one_json_line(corpus.query("JSON SEARCH JWT"))
    assert [ev["body"] for ev in doc["events"]] == [BY_NAME["D"].text]
    doc = one_json_line(corpus.query("JSON REGEX ^warmed"))
    assert doc == {"found": 0, "returned": 0, "capped": False, "max_count": 100, "events": []}


def test_json_count_stats_help(corpus: ServerProcess) -> None:
    assert one_json_line(corpus.query("JSON COUNT")) == {"count": len(CORPUS)}
    stats = one_json_line(corpus.query("JSON STATS"))
    assert list(stats)[:4] == ["Total", "Dropped", "Current", "Clients"]
    assert (stats["Total"], stats["Dropped"], stats["Current"], stats["Clients"]) == (8, 0, 8, 0)
    assert all(isinstance(v, int | float) for v in stats.values())
    text_pairs = stats_pairs(corpus.query("STATS"))
    assert [k for k, _ in text_pairs] == list(stats)
    doc = one_json_line(corpus.query("JSON HELP"))
    assert doc["help"] == corpus.query("HELP").splitlines()


# --- errors --------------------------------------------------------------------------------

UNKNOWN = "ERROR: Unknown command. Use HELP for usage.\n"
EMPTY = "ERROR: Empty command. Use HELP for usage.\n"


# With a JSON prefix the errors are JSON: tests/test_operator_errors.py.
@pytest.mark.parametrize("command", ["FOO", "SELECT * FROM logs", "COUNTS"])
def test_unknown_command(corpus: ServerProcess, command: str) -> None:
    assert corpus.query(command) == UNKNOWN


@pytest.mark.parametrize("data", [b"\n", b"   \n", b"\r\n", b""], ids=repr)
def test_empty_command(corpus: ServerProcess, data: bytes) -> None:
    assert raw_exchange(corpus.query_port, data) == EMPTY


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
def test_invalid_query_syntax(corpus: ServerProcess, command: str, reason: str) -> None:
    reply = corpus.query(command)
    assert reply.startswith(_INVALID), reply
    assert reply.endswith("\n") and reply.count("\n") == 1, reply
    assert reason in reply[len(_INVALID) :], reply


def test_client_that_sends_nothing_gets_an_error(server_factory: ServerFactory) -> None:
    server = server_factory(env={**os.environ, "LOGCASTER_QUERY__TIMEOUT": "0.3"})
    reply = raw_exchange(server.query_port, b"", shutdown=False)
    assert reply == "ERROR: No command received within 0.3 s\n"
    assert server.query("COUNT") == "COUNT: 0\n"  # and the server still answers


def test_command_too_long(corpus: ServerProcess) -> None:
    # One byte over the limit and no newline: the server has read it all when it answers.
    reply = raw_exchange(corpus.query_port, b"X" * (64 * 1024 + 1))
    assert reply == "ERROR: Command too long (max 65536 bytes)\n"
