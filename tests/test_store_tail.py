"""Issue 14, item 2: the store holds every durable event within about
`store.index_delay_ms`, and CLEAR never hides stored events.

Real servers with `-P`: the partial last chunk of active.log is indexed once
traffic idles, so `StoreLag` reaches 0 and `source=store` answers the newest
event; CLEAR empties the memory buffer only, whether the cleared events are
indexed yet or not.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from logcaster.store.index import load_index
from logcaster.testing import ServerProcess, wait_for
from tests.conftest import ServerFactory


def env(**settings: str) -> dict[str, str]:
    out = {**os.environ}
    out.update({f"LOGCASTER_{key.upper()}": value for key, value in settings.items()})
    return out


def ask(server: ServerProcess, params: str) -> dict[str, Any]:
    reply = server.query(f"JSON QUERY {params}")
    assert reply.startswith("{"), reply
    doc: dict[str, Any] = json.loads(reply)
    return doc


def lines(first: int, n: int) -> bytes:
    return b"".join(b"INFO tail-test event %d\n" % i for i in range(first, first + n))


def test_idle_tail_is_indexed(server_factory: ServerFactory, tmp_path: Path) -> None:
    """A few events, far less than a chunk, then nothing: the store indexes them
    (StoreLag 0), `source=store` finds the newest, and no answer is partial
    although memory keeps only 10 of them."""
    server = server_factory(
        "-P",
        str(tmp_path / "data"),
        env=env(memory__capacity="10", store__max_unindexed="10"),
    )
    server.send(lines(1, 100))
    server.wait_total(100)
    wait_for(
        "the store",
        server.stats,
        lambda s: s["StoreIndexed"] == 100 and s["StoreLag"] == 0,
        10,
    )
    newest = ask(server, "source=store limit=1")
    assert [ev["body"] for ev in newest["events"]] == ["INFO tail-test event 100"]
    head = server.query("QUERY keyword=tail-test limit=1 max_count=1000").splitlines()[0]
    assert head == "FOUND: 100 matches", head
    # More events later extend the indexed tail: each once, none lost.
    server.send(lines(101, 50))
    wait_for("the store", server.stats, lambda s: s["StoreIndexed"] == 150, 10)
    doc = ask(server, "source=store limit=1000 order=asc max_count=1000")
    assert [ev["body"] for ev in doc["events"]] == [
        f"INFO tail-test event {i}" for i in range(1, 151)
    ]
    assert doc["found"] == 150


def test_clear_keeps_indexed_events(server_factory: ServerFactory, tmp_path: Path) -> None:
    server = server_factory("-P", str(tmp_path / "data"))
    server.send(lines(1, 40))
    wait_for("the store", server.stats, lambda s: s["StoreIndexed"] == 40, 10)
    assert server.query("CLEAR") == "OK: cleared 40 events\n"
    assert server.query("COUNT") == "COUNT: 0\n"
    assert ask(server, "source=memory")["found"] == 0
    for source in ("all", "store"):
        doc = ask(server, f"source={source} limit=1000")
        assert doc["found"] == 40, (source, doc["found"])


def test_clear_keeps_events_not_indexed_yet(server_factory: ServerFactory, tmp_path: Path) -> None:
    """The index waits (a long index_delay_ms): CLEAR empties memory, yet the
    cleared events, stored but not indexed, still answer `source=all`; once
    the store has them they answer `source=store` too, never twice."""
    data = tmp_path / "data"
    server = server_factory("-P", str(data), env=env(store__index_delay_ms="3600000"))
    server.send(lines(1, 30))
    wait_for("delivery", server.stats, lambda s: s["Current"] == 30)
    assert server.stats()["StoreIndexed"] == 0  # the tail waits for the delay
    assert server.query("CLEAR") == "OK: cleared 30 events\n"
    assert server.query("COUNT") == "COUNT: 0\n"
    assert ask(server, "source=memory")["found"] == 0
    doc = ask(server, "source=all limit=1000 order=asc")
    assert [ev["body"] for ev in doc["events"]] == [
        f"INFO tail-test event {i}" for i in range(1, 31)
    ]
    # New events after CLEAR are memory's again; the cleared ones stay hidden there.
    server.send(lines(31, 5))
    wait_for("delivery", server.stats, lambda s: s["Current"] == 5)
    assert server.query("COUNT") == "COUNT: 5\n"
    assert ask(server, "source=memory")["found"] == 5
    assert ask(server, "source=all limit=1000")["found"] == 35
    # A restart indexes nothing more (the delay), replays the unindexed events.
    server.stop()
    server = server_factory("-P", str(data), env=env(store__index_delay_ms="100"))
    wait_for("the store", server.stats, lambda s: s["StoreIndexed"] == 35, 10)
    assert ask(server, "source=store limit=1000")["found"] == 35
    assert ask(server, "source=all limit=1000")["found"] == 35


def test_lag_reaches_zero_when_the_newest_ids_were_sampled_away(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """Tail sampling cuts whole requests: their ids are settled (durable) but never
    written. The store's high-water id still reaches the durable id."""
    server = server_factory(
        "-P",
        str(tmp_path / "data"),
        env=env(
            tail_sampling__enabled="true",
            tail_sampling__window_s="0.3",
            tail_sampling__rate="0",
        ),
    )
    server.send(b"INFO kept without a request id\n")
    server.send(b"".join(b"[INFO] ok %d request_id=req-%d\n" % (i, i) for i in range(50)))
    wait_for("sampling", server.stats, lambda s: s["Sampled"] == 50 and s["Delivered"] == 1)
    stats = wait_for(
        "the store",
        server.stats,
        lambda s: s["StoreLag"] == 0 and s["StoreIndexed"] == 51,
        10,
    )
    assert stats["StoreIndexed"] == 51
    doc = ask(server, "source=store")
    assert [ev["body"] for ev in doc["events"]] == ["INFO kept without a request id"]


def test_queries_while_the_tail_is_extended_see_each_event_once(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """A trickle of events, the tail indexed every 50 ms and extended in place, and
    queries meanwhile: each answer holds every event up to its newest exactly once
    (the store cut at S, memory above it)."""
    server = server_factory(
        "-P",
        str(tmp_path / "data"),
        env=env(memory__capacity="20", store__index_delay_ms="50"),
    )
    sent = 0
    checked = 0
    extended = False
    while sent < 3000 and not (extended and checked >= 20):
        server.send(lines(sent + 1, 50))
        sent += 50
        doc = ask(server, "limit=10000 max_count=100000")
        ids = sorted(int(ev["id"]) for ev in doc["events"])
        assert ids == list(range(1, len(ids) + 1)), ids[-60:]
        assert doc["found"] == len(ids)
        stats = server.stats()
        extended = extended or 0 < stats["StoreIndexed"] < sent
        checked += 1
    wait_for("the store", server.stats, lambda s: s["StoreIndexed"] == sent, 10)
    doc = ask(server, "source=store limit=10000 max_count=100000")
    assert sorted(int(ev["id"]) for ev in doc["events"]) == list(range(1, sent + 1))
    # Extended, not appended: far below 1 MiB of text, the index holds one chunk.
    (chunks,) = (tmp_path / "data" / "index").glob("*.chunks")
    index = load_index(chunks.with_suffix(""))
    assert len(index.chunks) == 1 and index.last_id == sent
