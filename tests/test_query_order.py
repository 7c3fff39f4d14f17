"""Issue 14, item 13: answers are ordered by event time, ties by id, and `limit`
picks the first rows of that order, in memory, in the store, and merged.

Events carry their own timestamps, sent out of arrival order from two
connections (a late sender with older times), some with equal times. Part of
them is in the store (indexed by an earlier run), part only in memory (a
restart with a long `store.index_delay_ms` keeps them unindexed).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

from logcaster.testing import ServerProcess, wait_for
from tests.conftest import ServerFactory

BASE = 1_709_251_200  # 2024-03-01T00:00:00Z


def env(**settings: str) -> dict[str, str]:
    out = {**os.environ}
    out.update({f"LOGCASTER_{key.upper()}": value for key, value in settings.items()})
    return out


def line(n: int, ts: float) -> bytes:
    doc = {"ts": ts, "level": "info", "service": "order", "msg": f"order-test {n}"}
    return json.dumps(doc).encode() + b"\n"


def ask(server: ServerProcess, params: str) -> dict[str, Any]:
    reply = server.query(f"JSON QUERY keyword=order-test max_count=100000 {params}")
    assert reply.startswith("{"), reply
    doc: dict[str, Any] = json.loads(reply)
    return doc


def check(server: ServerProcess, source: str, known: dict[int, float]) -> None:
    """Every limit, both orders: the rows are the first of (ts, id) order over
    the events the source holds (`known`: id -> event time)."""
    ranked = sorted(known, key=lambda i: (known[i], i))
    for order, want in (("asc", ranked), ("desc", ranked[::-1])):
        for limit in (1, 3, 10, len(want)):
            doc = ask(server, f"source={source} order={order} limit={limit}")
            got = [int(ev["id"]) for ev in doc["events"]]
            assert got == want[:limit], (source, order, limit, got, want[:limit])
            assert doc["found"] == len(known)


def test_order_is_by_event_time(server_factory: ServerFactory, tmp_path: Path) -> None:
    rng = random.Random(13)
    data = tmp_path / "data"
    times: dict[int, float] = {}  # event id -> its time (ids follow arrival order)

    def send(server: ServerProcess, stamps: list[float]) -> None:
        first = len(times) + 1
        before = server.stats()["Delivered"]  # counted per run
        server.send(b"".join(line(first + k, ts) for k, ts in enumerate(stamps)))
        for k, ts in enumerate(stamps):
            times[first + k] = ts
        wait_for("delivery", server.stats, lambda s: s["Delivered"] >= before + len(stamps))

    # Run 1: 40 events, times shuffled (with ties), all indexed once idle.
    stored = [BASE + rng.randrange(0, 400) / 4 for _ in range(40)]
    server = server_factory("-P", str(data), env=env(memory__capacity="5"))
    send(server, stored)
    wait_for("the store", server.stats, lambda s: s["StoreIndexed"] == 40 and s["StoreLag"] == 0)
    check(server, "store", dict(times))
    server.stop()

    # Run 2: the index waits; two senders, the later one with older times,
    # interleaved with the stored ones.
    server = server_factory(
        "-P", str(data), env=env(memory__capacity="5", store__index_delay_ms="3600000")
    )
    send(server, [BASE + 50 + rng.randrange(0, 200) / 4 for _ in range(12)])
    send(server, [BASE - 30 + rng.randrange(0, 100) / 4 for _ in range(12)])
    assert server.stats()["StoreIndexed"] == 40
    check(server, "all", times)
    check(server, "store", {i: ts for i, ts in times.items() if i <= 40})
    held = ask(server, "source=memory limit=1000")["events"]
    check(server, "memory", {int(ev["id"]): times[int(ev["id"])] for ev in held})
    assert {int(ev["id"]) for ev in held} >= set(range(41, 65))  # unindexed: in memory
