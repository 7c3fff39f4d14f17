"""The TCP line query protocol (SPEC §6): the README example, COUNT, STATS, HELP, CLEAR.

Against the real server over real sockets, with the protocol's own errors
(unknown, empty, missing and too long commands). Read-only tests share the
module-scoped `corpus_server` (conftest.py); tests that change the buffer get
a fresh server each. Replies are compared as exact strings: the protocol is
what the original LogCaster clients parse.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess

import pytest

from logcaster.testing import ServerProcess, wait_for
from tests.conftest import ServerFactory
from tests.lineproto_helpers import (
    CORPUS,
    ROW,
    found,
    ingest,
    parse_found,
    raw_exchange,
    stats_pairs,
)

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
def test_commands_are_case_insensitive_and_trimmed(
    corpus_server: ServerProcess, command: str
) -> None:
    assert corpus_server.query(command) == f"COUNT: {len(CORPUS)}\n"


def test_command_without_newline_then_eof_is_answered(corpus_server: ServerProcess) -> None:
    assert raw_exchange(corpus_server.query_port, b"COUNT") == f"COUNT: {len(CORPUS)}\n"
    assert raw_exchange(corpus_server.query_port, b"QUERY level=FATAL") == found("F")


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


def test_help_mentions_every_command(corpus_server: ServerProcess) -> None:
    reply = corpus_server.query("HELP")
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
    assert corpus_server.query("help") == reply


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
    assert all(ROW.fullmatch(row) for row in rows)
    total, rows = parse_found(server.query("QUERY order=asc"))
    assert [row.split("] ", 1)[1] for row in rows] == [f"event {i}" for i in range(4, 9)]
    stats = dict(stats_pairs(server.query("STATS")))
    assert (stats["Total"], stats["Current"], stats["Evicted"]) == ("8", "5", "3")
    assert server.query("SEARCH event 3") == "FOUND: 0 matches\n"


# --- errors --------------------------------------------------------------------------------

UNKNOWN = "ERROR: Unknown command. Use HELP for usage.\n"
EMPTY = "ERROR: Empty command. Use HELP for usage.\n"


# With a JSON prefix the errors are JSON: tests/test_operator_errors.py.
@pytest.mark.parametrize("command", ["FOO", "SELECT * FROM logs", "COUNTS"])
def test_unknown_command(corpus_server: ServerProcess, command: str) -> None:
    assert corpus_server.query(command) == UNKNOWN


@pytest.mark.parametrize("data", [b"\n", b"   \n", b"\r\n", b""], ids=repr)
def test_empty_command(corpus_server: ServerProcess, data: bytes) -> None:
    assert raw_exchange(corpus_server.query_port, data) == EMPTY


def test_client_that_sends_nothing_gets_an_error(server_factory: ServerFactory) -> None:
    server = server_factory(env={**os.environ, "LOGCASTER_QUERY__TIMEOUT": "0.3"})
    reply = raw_exchange(server.query_port, b"", shutdown=False)
    assert reply == "ERROR: No command received within 0.3 s\n"
    assert server.query("COUNT") == "COUNT: 0\n"  # and the server still answers


def test_command_too_long(corpus_server: ServerProcess) -> None:
    # One byte over the limit and no newline: the server has read it all when it answers.
    reply = raw_exchange(corpus_server.query_port, b"X" * (64 * 1024 + 1))
    assert reply == "ERROR: Command too long (max 65536 bytes)\n"
