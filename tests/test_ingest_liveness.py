"""Queries stay answered while ingest is flooded (issue 14, item 5).

A real server per queue policy, flooded from 8 connections that send as fast
as the server reads, while COUNT and STATS round trips are measured. This is
a liveness check, not a benchmark: the bound is generous (a loaded 2-core CI
box), the figures are printed for the record.
"""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from logcaster.testing import query
from tests.conftest import ServerFactory

SENDERS = 8
ROUND_TRIPS = 12
# The issue asks for 1 s; a loaded 2-core CI box running other tests gets slack.
BOUND_S = 2.0


def _chunk(sender: int) -> bytes:
    """~1 MB of log lines, one in 50 an ERROR (sample keeps those)."""
    return b"".join(
        (b"[ERROR] flood %d/%d boom\n" if i % 50 == 0 else b"[INFO] flood %d/%d payload abc\n")
        % (sender, i)
        for i in range(30_000)
    )


@pytest.mark.parametrize("policy", ["block", "drop_newest", "drop_oldest", "reject", "sample"])
def test_queries_are_answered_during_a_flood(server_factory: ServerFactory, policy: str) -> None:
    env = {**os.environ, "LOGCASTER_QUEUE__POLICY": policy}
    server = server_factory(env=env)
    stop = threading.Event()
    flooding = threading.Barrier(SENDERS + 1)

    def flood(sender: int) -> None:
        chunk = _chunk(sender)
        with socket.create_connection(("127.0.0.1", server.ingest_port)) as sock:
            sock.sendall(chunk)
            flooding.wait(30)
            while not stop.is_set():
                try:
                    sock.sendall(chunk)
                except OSError:
                    return  # reject may end a connection; the others keep the flood up

    senders = [threading.Thread(target=flood, args=(i,), daemon=True) for i in range(SENDERS)]
    for thread in senders:
        thread.start()
    times: list[float] = []
    began = time.monotonic()
    try:
        flooding.wait(30)  # every sender has had a first megabyte taken
        for i in range(ROUND_TRIPS):
            start = time.monotonic()
            reply = query("127.0.0.1", server.query_port, "STATS" if i % 2 else "COUNT", 30.0)
            times.append(time.monotonic() - start)
            assert reply.startswith(("COUNT: ", "STATS: ")), reply
        total = server.stats()["Total"]
    finally:
        stop.set()
        for thread in senders:
            thread.join(30)
    rate = total / (time.monotonic() - began)
    print(
        f"{policy}: max {max(times):.3f} s, mean {sum(times) / len(times):.3f} s, {rate:,.0f} ev/s"
    )
    assert total > SENDERS * 30_000, "the flood was not under way during the queries"
    assert max(times) <= BOUND_S, f"{policy}: round trips {[round(t, 2) for t in times]}"
