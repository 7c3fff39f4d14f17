"""Each listener binds its own address (issue 14, item 10).

Opening ingest to the network must not open the query port (and CLEAR) with
it; a query port bound off loopback, without authentication, is warned about.
"""

from __future__ import annotations

import os
import socket

import pytest

from logcaster.testing import ServerProcess
from tests.conftest import ServerFactory


def _outward_address() -> str | None:
    """This machine's address on its default route (no packet is sent), if any."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the route
        except OSError:
            return None
        address: str = sock.getsockname()[0]
    return None if address.startswith("127.") else address


def _ready(server: ServerProcess) -> dict[str, object]:
    return next(doc for doc in server.logs if doc.get("event") == "ready")


def _warnings(server: ServerProcess, listener: str = "query") -> list[dict[str, object]]:
    return [
        doc
        for doc in server.logs
        if doc.get("event") == "exposed_without_auth" and doc.get("listener") == listener
    ]


def test_ingest_on_every_address_leaves_the_query_port_on_loopback(
    server_factory: ServerFactory,
) -> None:
    env = {**os.environ, "LOGCASTER_INGEST__HOST": "0.0.0.0"}
    server = server_factory("--syslog-port", "0", env=env)
    hosts = _ready(server)["hosts"]
    assert hosts == {
        "ingest": ["0.0.0.0"],
        "syslog": ["127.0.0.1"],
        "query": ["127.0.0.1"],
        "http": ["127.0.0.1"],
    }
    assert _warnings(server) == []
    (warning,) = _warnings(server, "ingest")  # anyone on the network may send
    assert warning["hosts"] == ["0.0.0.0"]
    outward = _outward_address()
    if outward is None:
        pytest.skip("no non-loopback address to connect from")
    socket.create_connection((outward, server.ingest_port), timeout=5).close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((outward, server.query_port), timeout=5)
    assert server.query("COUNT") == "COUNT: 0\n"  # on loopback it answers


def test_a_query_port_off_loopback_is_warned_about(server_factory: ServerFactory) -> None:
    server = server_factory("--query-host", "0.0.0.0")
    assert _ready(server)["hosts"] == {
        "ingest": ["127.0.0.1"],
        "query": ["0.0.0.0"],
        "http": ["127.0.0.1"],
    }
    (warning,) = _warnings(server)
    assert warning["level"] == "warning" and warning["hosts"] == ["0.0.0.0"]
    assert "without authentication" in str(warning["reason"])
