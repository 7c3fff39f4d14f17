"""Large answers of `GET /api/v1/query`: written in slices (chunked), the same
document as `JSON QUERY`, a stalled reader holds up nobody and is cut off at
`http.request_timeout`."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from logcaster.event import Event
from logcaster.frontends.answers import answer_from_json, answer_json, json_chunks
from logcaster.query.planner import Answer
from logcaster.testing import ServerProcess, start_server, wait_for
from tests.http_query_helpers import curl, http_query, line_json

EVENTS = 12_000
PAD = "x" * 2000
REQUEST_TIMEOUT_S = 2


def _event(i: int) -> Event:
    return Event(
        id=i,
        received_at=1.5 + i,
        source="tcp:127.0.0.1:1",
        body=f"line {i}\n  continued",
        message=f"line {i}",
        ts=1000.25 + i,
        level="INFO" if i % 2 else None,
        service="svc",
        fields={"n": i, "nested": {"a": [1, 2]}},
    )


@pytest.mark.parametrize("rows", [0, 1, 255, 256, 257, 1000])
@pytest.mark.parametrize("unindexed", [None, (5, 9)])
def test_chunks_join_to_the_whole_document(rows: int, unindexed: tuple[int, int] | None) -> None:
    answer = Answer(rows, [_event(i) for i in range(1, rows + 1)], False, 100, unindexed)
    chunks = list(json_chunks(answer, per_chunk=256))
    assert b"".join(chunks) == answer_json(answer)
    assert len(chunks) == 2 + (rows + 255) // 256
    back = answer_from_json(orjson.loads(answer_json(answer)))
    assert answer_json(back) == answer_json(answer)


@pytest.fixture(scope="module")
def big_server() -> Iterator[ServerProcess]:
    env = dict(os.environ)
    env["LOGCASTER_MEMORY__CAPACITY"] = str(EVENTS)
    env["LOGCASTER_HTTP__REQUEST_TIMEOUT"] = str(REQUEST_TIMEOUT_S)
    server = start_server(env=env)
    try:
        server.send(b"".join(f"event {i} {PAD}\n".encode() for i in range(EVENTS)))
        server.wait_total(EVENTS)
        yield server
    finally:
        server.kill()


BIG = [("limit", "10000"), ("max_count", str(EVENTS + 1))]


def test_a_large_answer_is_streamed_and_whole(big_server: ServerProcess) -> None:
    reply = http_query(big_server, BIG)
    assert reply.status == 200
    assert reply.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in reply.headers
    doc = reply.json()
    assert (doc["found"], doc["returned"], doc["capped"]) == (EVENTS, 10_000, False)
    ids = [ev["id"] for ev in doc["events"]]
    assert ids == list(range(EVENTS, EVENTS - 10_000, -1))
    assert doc == line_json(big_server, BIG)


def test_curl_reads_a_large_answer(big_server: ServerProcess, tmp_path: Path) -> None:
    out = tmp_path / "answer.json"
    url = f"http://127.0.0.1:{big_server.ports['http']}/api/v1/query?limit=10000"
    curl("-o", str(out), url)
    doc = orjson.loads(out.read_bytes())
    assert doc["returned"] == len(doc["events"]) == 10_000


def test_a_stalled_reader_holds_up_nobody_and_is_cut_off(big_server: ServerProcess) -> None:
    request = b"GET /api/v1/query?limit=10000 HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", big_server.ports["http"])) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(request)
        # The answer (20 MB) waits for this reader; another query does not.
        assert http_query(big_server, [("limit", "1")]).json()["returned"] == 1
        # Past http.request_timeout the server drops the connection...
        wait_for(
            "the stalled connection to be closed",
            lambda: big_server.stats()["HttpConnections"],
            lambda n: n == 0,
        )
        # ...and what the reader gets is an unfinished body, never a short valid one.
        received = bytearray()
        try:
            while chunk := sock.recv(1 << 20):
                received += chunk
        except ConnectionResetError:
            pass
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")
    assert not received.endswith(b"0\r\n\r\n")
    assert len(received) < 10_000 * len(PAD)
    assert http_query(big_server, [("limit", "1")]).status == 200
