"""The store across restarts and crashes (issue 5): every event answers once.

SIGTERM and a start again on the same data directory, kill -9 of the server
mid-load (acks and fsync always) and kill -9 of the indexer process: the store
opens, the segments hold a prefix of what was sent, and the answers of every
source equal the brute force (tests/store_corpus.py).
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from logcaster.client import LogCasterClient
from logcaster.segments import read_batches
from logcaster.testing import ServerProcess, wait_for
from tests.conftest import ServerFactory
from tests.store_corpus import SHAPE, Known, chunks_of, corpus_bytes, make_corpus, time_order
from tests.store_server_helpers import (
    EXACT,
    MAX_LIMIT,
    ask,
    check_shape,
    errors_logged,
    ids_on_disk,
    memory_ids,
    segments,
    store_env,
    wait_indexed,
    wait_token_indexed,
)

# ---- restart -------------------------------------------------------------------------


def check_history(server: ServerProcess, events: Sequence[Known], shapes: Sequence[str]) -> None:
    """source=all holds each of `events` once, and answers `shapes` exactly."""
    total = len(events)
    assert total <= 2 * MAX_LIMIT
    rows = min(total, MAX_LIMIT)
    newest = ask(server, SHAPE["everything"], "all", limit=rows)
    oldest = ask(server, SHAPE["everything"], "all", limit=rows, order="asc")
    assert newest["found"] == oldest["found"] == total
    ids = range(1, total + 1)
    assert [int(ev["id"]) for ev in newest["events"]] == time_order(events, ids, True)[:rows]
    assert [int(ev["id"]) for ev in oldest["events"]] == time_order(events, ids, False)[:rows]
    for name in shapes:
        check_shape(server, SHAPE[name], "all", events, range(1, total + 1))


def check_memory(server: ServerProcess, last_id: int) -> range:
    """Memory holds a run of the newest ids, each once, as many as STATS Current.

    While the indexer works, memory lets go of what it indexes (down to the
    capacity) between any two requests: the answer counts when STATS Current
    was the same before and after it."""

    def read() -> tuple[int, dict[str, Any], int]:
        before = int(server.stats()["Current"])
        doc = ask(server, SHAPE["everything"], "memory", limit=MAX_LIMIT, order="asc")
        return before, doc, int(server.stats()["Current"])

    current, doc, _ = wait_for("a still memory", read, lambda r: r[0] == r[2])
    ids = sorted(int(ev["id"]) for ev in doc["events"])
    assert doc["found"] == current == len(ids)
    assert ids == list(range(last_id - current + 1, last_id + 1))
    return range(ids[0], last_id + 1)


RESTART_SHAPES = ("keyword", "or", "level", "service", "window", "field_json", "asc")


def test_restart_keeps_the_whole_history(server_factory: ServerFactory, tmp_path: Path) -> None:
    """SIGTERM, then start again on the same DIR, twice: right after a load (the
    index may lag) and once everything is indexed. Every event answers once from
    source=all, new events continue the ids, memory is refilled, never doubled."""
    data = tmp_path / "data"
    events = make_corpus(12_000, seed=11)
    capacity = 2000
    env = store_env(memory__capacity=str(capacity))
    first = server_factory("-P", str(data), env=env)
    first.send(corpus_bytes(events[:8000]))
    wait_for("delivery", first.stats, lambda s: s["Delivered"] == 8000)
    assert first.stop() == 0

    second = server_factory("-P", str(data), env=env)
    check_history(second, events[:8000], RESTART_SHAPES)  # the indexer may still work
    check_memory(second, 8000)
    high_water = wait_indexed(second, data, 8000, delivered=0)
    check_history(second, events[:8000], RESTART_SHAPES)
    memory = check_memory(second, 8000)
    assert len(memory) == max(capacity, 8000 - high_water)
    second.send(corpus_bytes(events[8000:]))
    high_water = wait_indexed(second, data, len(events), delivered=4000)
    check_history(second, events, RESTART_SHAPES)
    check_shape(second, SHAPE["keyword"], "store", events, range(1, high_water + 1))
    assert second.stop() == 0

    third = server_factory("-P", str(data), env=env)
    stats = third.stats()
    assert stats["StoreIndexed"] == high_water  # from the index on disk, at once
    assert stats["Total"] == 0
    assert stats["Current"] == max(capacity, len(events) - high_water)  # refilled once
    check_history(third, events, RESTART_SHAPES)
    check_shape(third, SHAPE["level"], "memory", events, check_memory(third, len(events)))
    assert not errors_logged(first) and not errors_logged(second) and not errors_logged(third)


# ---- kill -9 -----------------------------------------------------------------------


def test_kill_9_during_bulk_load(server_factory: ServerFactory, tmp_path: Path) -> None:
    """kill -9 (server and indexer) mid-load with acks and fsync always, then restart:
    the store opens, the segments hold a prefix of the corpus covering every
    acknowledged line, and source=all counts exactly the events in the segments,
    before and after the indexer caught up."""
    data = tmp_path / "data"
    events = make_corpus(50_000, seed=13)
    env = store_env(persist__fsync="always")
    server = server_factory("-P", str(data), env=env)
    wait_for("the indexer", lambda: indexer_pids(server), bool)
    client = LogCasterClient("127.0.0.1", server.ingest_port, max_pending_lines=20_000, timeout=10)
    lines_sent = 0
    kill_after = sum(ev.lines for ev in events) * 2 // 5
    try:
        for chunk in chunks_of(events, 250):
            client.send(chunk)
            lines_sent += chunk.count(b"\n")
            # Past 40% acknowledged, and once the store indexed something.
            if client.acked >= kill_after and server.stats()["StoreIndexed"] > 0:
                break
            time.sleep(0.01)  # paced: ~2.5 s in all, the indexer works meanwhile
        else:
            pytest.fail("the load ended before the kill")
        acked = client.acked
        server.stop(signal.SIGKILL)  # the whole process group: the indexer too
        assert client.pending_lines > 0 and lines_sent > acked  # lines were in flight
    finally:
        confirmed = client.close(timeout=0.1)
    assert not confirmed  # the server is gone: those lines stay unconfirmed

    restarted = server_factory("-P", str(data), env=env)
    on_disk = ids_on_disk(data)
    kept = len(on_disk)
    assert on_disk == list(range(1, kept + 1))
    texts = [t for path in segments(data) for b in read_batches(path) for t in b.texts]
    assert texts == [ev.text.encode() for ev in events[:kept]]  # a prefix, as sent
    assert sum(ev.lines for ev in events[:kept]) >= acked
    everything = f"QUERY max_count={EXACT}"
    assert restarted.query(everything).splitlines()[0] == f"FOUND: {kept} matches"
    wait_indexed(restarted, data, kept, delivered=0)
    assert restarted.query(everything).splitlines()[0] == f"FOUND: {kept} matches"
    for name in ("keyword", "and_multiline", "level_window", "field_logfmt"):
        check_shape(restarted, SHAPE[name], "all", events, range(1, kept + 1))
    assert restarted.stats()["IndexerRestarts"] == 0
    assert not errors_logged(restarted)


def indexer_pids(server: ServerProcess) -> list[int]:
    return [int(log["pid"]) for log in server.logs if log.get("event") == "indexer_started"]


def children(pid: int) -> list[int]:
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
        return [int(c) for t in tasks for c in (t / "children").read_text().split()]
    except OSError:
        return []


def alive(pids: list[int]) -> list[int]:
    """Those of `pids` still running (not zombies: an orphan is reaped by init)."""
    out = []
    for p in pids:
        try:
            if Path(f"/proc/{p}/stat").read_text().split(") ")[1][0] != "Z":
                out.append(p)
        except (OSError, IndexError):
            pass
    return out


def test_indexer_killed_mid_load(server_factory: ServerFactory, tmp_path: Path) -> None:
    """kill -9 of the indexer process mid-load: the server logs `indexer_exited`,
    starts a new one (IndexerRestarts), memory holds the events meanwhile, and
    the final answers of every source are exact."""
    data = tmp_path / "data"
    events = make_corpus(40_000, seed=17)
    server = server_factory("-P", str(data), env=store_env(memory__capacity="2000"))
    pid = wait_for("the indexer", lambda: indexer_pids(server), bool)[0]
    sends = chunks_of(events, 1000)
    half = len(sends) // 2
    with socket.create_connection(("127.0.0.1", server.ingest_port)) as sock:
        for chunk in sends[:half]:
            sock.sendall(chunk)
        wait_for("indexing", server.stats, lambda s: s["StoreIndexed"] > 0)
        terms = wait_for("the token-index process", lambda: children(pid), bool)
        os.kill(pid, signal.SIGKILL)
        for chunk in sends[half:]:  # while the indexer is down, then restarting
            sock.sendall(chunk)
            time.sleep(0.02)
    exited = wait_for(
        "indexer_exited",
        lambda: [log for log in server.logs if log.get("event") == "indexer_exited"],
        bool,
    )
    assert exited[0]["returncode"] == -signal.SIGKILL
    pids = wait_for("a new indexer", lambda: indexer_pids(server), lambda p: len(p) >= 2)
    assert pids[1] != pid
    # The old token-index process sees its parent gone and exits; the new
    # indexer's one takes the lock over and builds what is left.
    wait_for("the old token-index process to exit", lambda: alive(terms), lambda a: not a)
    # Whatever the indexer did meanwhile, the split by S answers every event once.
    wait_for("delivery", server.stats, lambda s: s["Delivered"] == len(events))
    assert server.query(f"QUERY max_count={EXACT}").startswith(f"FOUND: {len(events)} matches")
    high_water = wait_indexed(server, data, len(events))
    assert wait_token_indexed(data) > 0
    stats = server.stats()
    assert stats["IndexerRestarts"] >= 1 and stats["Dropped"] == 0
    all_ids = range(1, len(events) + 1)
    memory = memory_ids(server, len(events))
    for name in ("everything", "keyword", "regex", "levels", "service", "window_tail"):
        check_shape(server, SHAPE[name], "all", events, all_ids)
        check_shape(server, SHAPE[name], "store", events, range(1, high_water + 1))
        check_shape(server, SHAPE[name], "memory", events, memory)
