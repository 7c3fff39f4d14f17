"""What the line-protocol tests share: a corpus of known events and reply readers.

`CORPUS` is what the module-scoped `corpus` fixture (conftest.py) loads into a
server; `found` builds the exact reply that lists corpus events, `parse_found`
and `stats_pairs` take replies apart, `ingest` and `raw_exchange` talk to a
server's ports.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from logcaster.testing import ServerProcess

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
ROW = re.compile(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\] (.*)")


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


_STATS = re.compile(
    r"STATS: Total=(\d+), Dropped=(\d+), Current=(\d+), Clients=(\d+)"
    r"((?:, [A-Za-z]+=\d+(?:\.\d+)?)*)\n"
)


def stats_pairs(reply: str) -> list[tuple[str, str]]:
    """The `Name=value` pairs of a STATS reply, in order; fails unless well-formed."""
    assert _STATS.fullmatch(reply), reply
    body = reply[len("STATS: ") : -1]
    return [(k, v) for k, _, v in (pair.partition("=") for pair in body.split(", "))]
