"""Connection bounds of the ingest listeners (issue 14, item 8), over real sockets.

Idle connections are closed after `ingest.idle_timeout`, but not an
acknowledged-delivery connection still owed acks; past
`ingest.max_connections_per_ip` (or `ingest.max_connections`) a new connection
is closed at once, counted in STATS and logged without a log flood.
"""

from __future__ import annotations

import os
import socket

import pytest

from logcaster.testing import ServerProcess, wait_for
from tests.conftest import ServerFactory


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=20.0)


def _closed_by_server(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (a reset counts as closed)."""
    chunks = []
    try:
        while chunk := sock.recv(4096):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def _still_open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""  # data waiting: open as well
    except BlockingIOError:
        return True  # nothing to read and no EOF
    finally:
        sock.settimeout(20.0)


def test_idle_connections_are_closed_but_not_one_owed_acks(server_factory: ServerFactory) -> None:
    env = {
        **os.environ,
        "LOGCASTER_INGEST__IDLE_TIMEOUT": "0.5",
        # Acks wait for tail sampling's window: the ack connection is owed acks for 5 s.
        "LOGCASTER_TAIL_SAMPLING__ENABLED": "true",
        "LOGCASTER_TAIL_SAMPLING__WINDOW_S": "5",
    }
    server = server_factory("--syslog-port", "0", env=env)
    acked = _connect(server.ingest_port)
    acked.sendall(b"#LOGCASTER ACK 1\nacked line\n")
    assert acked.recv(64) == b"#OK ACK 1\n"
    plain = _connect(server.ingest_port)
    plain.sendall(b"plain line\n")
    syslog = _connect(server.ports["syslog"])
    syslog.sendall(b"<13>1 - host app - - - syslog line\n")
    assert _closed_by_server(plain) == b""
    assert _closed_by_server(syslog) == b""
    stats = server.stats()
    assert (stats["IdleClosed"], stats["Clients"]) == (2, 1)
    assert _still_open(acked)  # owed an ack: not idle
    # The ack comes once the window has passed; idle time counts from it.
    assert _closed_by_server(acked) == b"ACK 1\n"
    stats = wait_for("every line stored", server.stats, lambda s: s["Total"] == 3)
    assert (stats["IdleClosed"], stats["Clients"]) == (3, 0)
    idle = [doc for doc in server.logs if doc.get("event") == "connection_closed_idle"]
    assert idle and idle[0]["idle_timeout"] == 0.5
    for sock in (acked, plain, syslog):
        sock.close()


def _refusals(server: ServerProcess) -> list[dict[str, object]]:
    return [doc for doc in server.logs if doc.get("event") == "connection_refused"]


@pytest.mark.parametrize(
    ("setting", "reason"),
    [
        ("LOGCASTER_INGEST__MAX_CONNECTIONS_PER_IP", "MaxConnectionsPerIp"),
        ("LOGCASTER_INGEST__MAX_CONNECTIONS", "MaxConnections"),
    ],
)
def test_connections_past_a_cap_are_refused_counted_and_logged_once(
    server_factory: ServerFactory, setting: str, reason: str
) -> None:
    server = server_factory(env={**os.environ, setting: "3"})
    held = [_connect(server.ingest_port) for _ in range(3)]
    for i, sock in enumerate(held):
        sock.sendall(b"held %d\n" % i)
    wait_for("3 clients", server.stats, lambda s: s["Clients"] == 3)
    refused = 20
    for _ in range(refused):
        with _connect(server.ingest_port) as sock:
            assert _closed_by_server(sock) == b""
    stats = server.stats()
    assert stats["ConnectionsRefused"] == stats["ConnectionsRefused" + reason] == refused
    assert stats["Clients"] == 3
    wait_for("the held lines stored", server.stats, lambda s: s["Total"] == 3)
    logs = _refusals(server)
    assert 1 <= len(logs) < refused  # at most one line a second per reason
    assert logs[0]["peer"] == "127.0.0.1" and logs[0]["connections"] == 1
    # A slot freed is a slot taken again.
    held.pop().close()
    wait_for("2 clients", server.stats, lambda s: s["Clients"] == 2)
    with _connect(server.ingest_port) as sock:
        sock.sendall(b"admitted again\n")
        wait_for("stored", server.stats, lambda s: s["Total"] == 4 and s["Clients"] == 3)
    for sock in held:
        sock.close()


def test_a_cap_above_the_open_files_limit_is_warned_about(server_factory: ServerFactory) -> None:
    """Past the hard open-files limit, accept() would fail before the cap: say so."""
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard >= 1_000_000:
        pytest.skip("no open-files hard limit below 1,000,000 here")
    env = {**os.environ, "LOGCASTER_INGEST__MAX_CONNECTIONS": "1000000"}
    server = server_factory(env=env)
    (warning,) = [d for d in server.logs if d.get("event") == "fd_limit_below_max_connections"]
    assert warning["max_connections"] == 1_000_000 and warning["nofile"] == hard
