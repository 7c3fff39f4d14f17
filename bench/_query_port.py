"""Talking to a LogCaster query port: one command per connection, STATS parsed.

The ingest benchmark times its runs by polling STATS (bench/_ingest_run.py);
bench/query reads the same counters while it loads its corpus.
"""

from __future__ import annotations

import socket

from _common import BenchError


def query(port: int, command: str, timeout: float = 5.0) -> str:
    """One command on the query port; the server answers and closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(command.encode() + b"\n")
        chunks: list[bytes] = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def parse_stats(reply: str) -> dict[str, str]:
    """`STATS: Total=1, Dropped=0, ...` as a dict of strings."""
    line = reply.strip()
    if not line.startswith("STATS:"):
        raise BenchError(f"not a STATS reply: {reply!r}")
    out: dict[str, str] = {}
    for pair in line[len("STATS:") :].split(","):
        key, sep, value = pair.strip().partition("=")
        if sep:
            out[key] = value
    if "Total" not in out:
        raise BenchError(f"STATS reply without Total: {reply!r}")
    return out


def stat_int(stats: dict[str, str], key: str) -> int | None:
    try:
        return int(float(stats[key]))
    except (KeyError, ValueError):
        return None


def total_of(stats: dict[str, str]) -> int:
    """Events every sink has taken (Delivered; older servers: Total, events read)."""
    total = stat_int(stats, "Delivered")
    if total is None:
        total = stat_int(stats, "Total")
    if total is None:
        raise BenchError(f"STATS Total is not a number: {stats}")
    return total
