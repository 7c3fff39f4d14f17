"""Scale-out over real processes: `serve --publish` against a redis-server of the test's
own (free port, AOF on), and a writer into a PostgreSQL schema of the test's own.

The fault runs (1,000,000 lines, kill -9s) are in test_scaleout_faults.py; these
check one behaviour each: the session handshake's numbering, Redis down (spool,
/readyz, drain in order), the persistence warning, resends stored once, and
poison entries in the dead-letter stream.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import psycopg
import pytest
import redis

from logcaster.client.connection import LogCasterClient
from logcaster.pipeline.batch import Batch
from logcaster.scaleout import entry
from logcaster.scaleout.rows import COLUMNS, batch_rows
from logcaster.testing import ServerProcess, start_server
from tests.scaleout_helpers import STREAM, RedisServer, pg_schema, schema_url


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.kill9()


@pytest.fixture
def pg_url() -> Iterator[str]:
    with pg_schema() as name:
        yield schema_url(name)


@pytest.fixture
def writers(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(redis_url: str, pg: str, *extra: str) -> subprocess.Popen[bytes]:
        args = ["--redis", redis_url, "--postgres", pg, "--claim-idle-ms", "300", *extra]
        with open(tmp_path / f"writer-{len(started)}.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "logcaster", "writer", *args], stdout=log, stderr=log
            )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _xrange(r: redis.Redis, stream: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    return cast(list[tuple[bytes, dict[bytes, bytes]]], r.xrange(stream))


def _entries(server: RedisServer) -> list[tuple[int, Batch]]:
    with server.client() as r:  # closed: a socket left to the GC fails a later test
        return [entry.decode(fields) for _, fields in _xrange(r, STREAM)]


def _wait(what: str, test: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not test():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _count(pg: str, sql: str = "SELECT count(*) FROM events") -> int:
    try:
        with psycopg.connect(pg) as conn:
            row = conn.execute(sql).fetchone()
    except psycopg.errors.UndefinedTable:
        return 0
    return int(row[0]) if row else 0


def test_session_handshake_numbers_each_event_by_its_first_line(
    redis_server: RedisServer,
) -> None:
    server = start_server("--publish", redis_server.url)
    try:
        session = secrets.token_hex(16)
        hello = b"#LOGCASTER ACK 1 SESSION %s SEQ 100\n" % session.encode()
        with socket.create_connection(("127.0.0.1", server.ingest_port)) as sock:
            for i in range(0, len(hello), 7):  # in pieces
                sock.sendall(hello[i : i + 7])
                time.sleep(0.002)
            sock.sendall(b"one\ntwo failed\n  at a.b(C.java:1)\nthree\n")
            sock.shutdown(socket.SHUT_WR)
            replies = b""
            while not replies.endswith(b"ACK 4\n"):
                chunk = sock.recv(100)
                assert chunk, replies
                replies += chunk
        assert replies.startswith(b"#OK ACK 1\n")
        rows = [
            dict(zip(COLUMNS, row, strict=True))
            for node, batch in _entries(redis_server)
            for row in batch_rows(node, batch)
        ]
        assert [(r["body"], r["seq"]) for r in rows] == [
            ("one", 100),
            ("two failed\n  at a.b(C.java:1)", 101),
            ("three", 103),
        ]
        assert {str(r["session"]).replace("-", "") for r in rows} == {session}
        # A session line that is not one (a bad id) is an ordinary line, unanswered.
        with socket.create_connection(("127.0.0.1", server.ingest_port)) as sock:
            sock.sendall(b"#LOGCASTER ACK 1 SESSION nothex SEQ 1\nafter\n")
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(5)
            assert sock.recv(100) == b""

        def texts() -> list[bytes]:
            return [t for _, b in _entries(redis_server) for t in b.texts]

        _wait("the lookalike", lambda: b"after" in texts())
        assert b"#LOGCASTER ACK 1 SESSION nothex SEQ 1" in texts()
    finally:
        server.stop()


def _ready(server: ServerProcess) -> int:
    url = f"http://127.0.0.1:{server.ports['http']}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _get(server: ServerProcess, path: str) -> str:
    url = f"http://127.0.0.1:{server.ports['http']}{path}"
    with urllib.request.urlopen(url, timeout=5) as answer:
        return str(answer.read().decode())


def _stderr(server: ServerProcess) -> str:
    return b"".join(server.raw_stderr).decode(errors="replace")


def test_redis_down_spools_acks_and_drains_in_order(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    server = start_server("-P", str(tmp_path / "node"), "--publish", redis_server.url)
    try:
        redis_server.kill9()
        with LogCasterClient("127.0.0.1", server.ingest_port, ack=True) as client:
            for i in range(50):
                client.send(b"".join(b"spooled %05d\n" % (i * 100 + j) for j in range(100)))
            assert client.flush(30), client.last_error  # acked: the spool fsynced them
        _wait("not ready", lambda: _ready(server) == 503)
        assert 'logcaster_forward_spool_events{group="publish"} 5000' in _get(server, "/metrics")
        redis_server.start()
        _wait(
            "the drain",
            lambda: sum(len(b.texts) for _, b in _entries(redis_server)) == 5000,
        )
        batches = [b for _, b in _entries(redis_server)]
        texts = [t for b in batches for t in b.texts]
        assert texts == [b"spooled %05d" % i for i in range(5000)]
        _wait("ready again", lambda: _ready(server) == 200)
    finally:
        server.stop()
    # Ids were reserved on disk before Redis got them: a restart continues above them,
    # so a node that lost its file's tail (power loss) never reuses a published id.
    reserved = int((tmp_path / "node" / "forward" / "publish" / "reserved-ids").read_text())
    assert reserved >= 5000  # every published id
    again = start_server("-P", str(tmp_path / "node"), "--publish", redis_server.url)
    try:
        again.send(b"after the restart\n")
        _wait("the new entry", lambda: len(_entries(redis_server)) > len(batches))
        assert _entries(redis_server)[-1][1].first_id == reserved + 1
    finally:
        again.stop()


def test_a_redis_without_aof_is_warned_about(tmp_path: Path) -> None:
    weak = RedisServer(tmp_path / "redis", appendonly="no")
    weak.start()
    try:
        server = start_server("--publish", weak.url)
        try:
            server.send(b"hello\n")
            _wait("the warning", lambda: "redis_persistence_risk" in _stderr(server))
            assert "appendonly is off" in _stderr(server)
        finally:
            server.stop()
    finally:
        weak.kill9()


def test_resent_lines_are_stored_once_whichever_node_took_them(
    redis_server: RedisServer, pg_url: str, writers: Callable[..., subprocess.Popen[bytes]]
) -> None:
    a = start_server("--publish", redis_server.url)
    b = start_server("--publish", redis_server.url)
    try:
        writers(redis_server.url, pg_url)
        session = secrets.token_hex(16).encode()
        lines = [b"line %04d" % i for i in range(200)]
        # Node a takes lines 0-149; the client "lost" the acks of 100-149 and resends
        # them, with 150-199, to node b, numbering from line 100.
        for port, first, last in ((a.ingest_port, 0, 150), (b.ingest_port, 100, 200)):
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(b"#LOGCASTER ACK 1 SESSION %s SEQ %d\n" % (session, first))
                sock.sendall(b"".join(t + b"\n" for t in lines[first:last]))
                sock.shutdown(socket.SHUT_WR)
                while sock.recv(4096):
                    pass
        _wait(
            "every line", lambda: _count(pg_url, "SELECT count(DISTINCT body) FROM events") == 200
        )
        time.sleep(0.5)  # a duplicate would come with the same commit or the next
        assert _count(pg_url) == 200
        # Without a session, a resend is a second copy: at-least-once, as documented.
        with socket.create_connection(("127.0.0.1", a.ingest_port)) as sock:
            sock.sendall(b"#LOGCASTER ACK 1\nline 0000\n")
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(4096):
                pass
        _wait("the copy", lambda: _count(pg_url) == 201)
    finally:
        a.stop()
        b.stop()


def test_poison_entries_go_to_the_dead_letter_stream(
    redis_server: RedisServer,
    pg_url: str,
    writers: Callable[..., subprocess.Popen[bytes]],
    request: pytest.FixtureRequest,
) -> None:
    r = redis_server.client()
    request.addfinalizer(r.close)
    r.xadd(STREAM, {b"v": b"9", b"what": b"poison"})
    torn = {b"v": b"1", b"node": b"1", b"first": b"1", b"n": b"2", b"recv": b"1", b"texts": b"x\n"}
    r.xadd(STREAM, torn)  # type: ignore[arg-type]
    # A receive time past year 9999 has no date, so no partition: poison, not a crash.
    far = dict(torn)
    far.update({b"n": b"1", b"recv": b"9000000000000000000"})
    r.xadd(STREAM, far)  # type: ignore[arg-type]
    server = start_server("--publish", redis_server.url)
    try:
        server.send(b"good one\ngood two\n")
        writers(redis_server.url, pg_url, "--max-deliveries", "2")
        _wait("the good lines", lambda: _count(pg_url) == 2)
        _wait("three dead letters", lambda: r.xlen(STREAM + ":dead") == 3)
        _wait("nothing pending", lambda: r.xpending(STREAM, "writers")["pending"] == 0)
        letters = [fields for _, fields in _xrange(r, STREAM + ":dead")]
        assert letters[0][b"what"] == b"poison" and b"entry format" in letters[0][b"error"]
        assert b"texts" in letters[1][b"error"] and int(letters[1][b"deliveries"]) > 2
        assert b"recv" in letters[2][b"error"]
    finally:
        server.stop()


def test_a_cut_over_long_line_keeps_its_own_line_number(redis_server: RedisServer) -> None:
    """The framer hands out a line cut at max_line_bytes before its newline is read:
    the next line must still get the next number (a shared one loses an event)."""
    env = {**os.environ, "LOGCASTER_INGEST__MAX_LINE_BYTES": "100"}
    server = start_server("--publish", redis_server.url, env=env)
    try:
        session = secrets.token_hex(16).encode()
        with socket.create_connection(("127.0.0.1", server.ingest_port)) as sock:
            sock.sendall(b"#LOGCASTER ACK 1 SESSION %s SEQ 0\n" % session)
            sock.sendall(b"line-a\n" + b"x" * 300)
            time.sleep(0.5)  # the cut line is handed out (held) before its newline
            sock.sendall(b"yyyy\nline-b\nline-c\n")
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(4096):
                pass
        _wait("4 events", lambda: sum(len(b) for _, b in _entries(redis_server)) == 4)
        rows = [
            dict(zip(COLUMNS, row, strict=True))
            for node, batch in _entries(redis_server)
            for row in batch_rows(node, batch)
        ]
        assert [(r["body"][:6], r["seq"]) for r in rows] == [
            ("line-a", 0),
            ("xxxxxx", 1),
            ("line-b", 2),
            ("line-c", 3),
        ]
    finally:
        server.stop()
