"""Answers sent while the client is still sending arrive, not a reset (issue 14, item 6).

The query server answers `ERROR: Command too long`, and ingest with the
`reject` policy answers `NACK <n>`, while the client is still sending;
closing with unread input would make the kernel send a reset, and the client
would lose the answer. The server half-closes and drains first.
"""

from __future__ import annotations

import os
import re
import socket
import struct
import threading

import pytest

from logcaster.frontends.lineproto import MAX_COMMAND_BYTES
from tests.conftest import ServerFactory


def _send_and_read(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10.0) as sock:
        sender = threading.Thread(target=_send_quietly, args=(sock, payload), daemon=True)
        sender.start()
        chunks = []
        while chunk := sock.recv(65536):  # a reset raises ConnectionResetError here
            chunks.append(chunk)
        sender.join(10)
    return b"".join(chunks)


def _send_quietly(sock: socket.socket, payload: bytes) -> None:
    try:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the server stopped reading and closed: what it answered is what counts


@pytest.mark.parametrize("size", [4 * MAX_COMMAND_BYTES, 64 * MAX_COMMAND_BYTES])
def test_a_command_too_long_gets_the_error_line(server_factory: ServerFactory, size: int) -> None:
    server = server_factory()
    command = b"QUERY keyword=" + b"x" * size + b"\n"
    for _ in range(3):  # a reset is a race with the client's reads: try it more than once
        reply = _send_and_read(server.query_port, command)
        assert reply.startswith(b"ERROR: Command too long"), reply[:200]
    assert server.query("COUNT") == "COUNT: 0\n"  # the server is fine


def test_a_nack_arrives_while_the_client_is_still_sending(server_factory: ServerFactory) -> None:
    """`reject` with a queue smaller than one read: the read is refused, NACK, close."""
    env = {**os.environ, "LOGCASTER_QUEUE__POLICY": "reject", "LOGCASTER_QUEUE__MAX_EVENTS": "100"}
    server = server_factory(env=env)
    lines = b"".join(b"refused line %06d\n" % i for i in range(200_000))
    for _ in range(3):
        reply = _send_and_read(server.ingest_port, b"#LOGCASTER ACK 1\n" + lines)
        assert re.fullmatch(rb"#OK ACK 1\n(ACK \d+\n)*NACK \d+\n", reply), reply[:200]


def test_a_client_that_resets_before_its_answer_leaves_no_error(
    server_factory: ServerFactory,
) -> None:
    """A client that sends its command and resets (SO_LINGER 0) gets nothing, and
    the server logs nothing worse than that: no 'Unhandled exception' traceback."""
    server = server_factory()
    server.send(b"".join(b"INFO line %d\n" % i for i in range(2000)))
    server.wait_total(2000)
    linger_zero = struct.pack("ii", 1, 0)
    for command in (b"QUERY limit=10000\n", b"COUNT\n", b"STATS\n") * 4:
        sock = socket.create_connection(("127.0.0.1", server.query_port), timeout=5.0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger_zero)
        sock.sendall(command)
        sock.close()  # RST at once, before the answer
    assert server.query("COUNT") == "COUNT: 2000\n"
    assert server.query("STATS").startswith("STATS: ")
    errors = [doc for doc in server.logs if doc.get("level") in ("error", "critical")]
    assert errors == []
