"""The store's limits while it works (issue 5): retention and query cost.

Retention deletes the oldest segments with their index files while queries go
on counting exactly what is on disk; over a 300k-event store, query.max_scan
and query.timeout end runaway queries in time while a concurrent sender keeps
ingesting.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from logcaster.segments.names import list_rotated
from logcaster.testing import ServerProcess, wait_for
from tests.conftest import ServerFactory
from tests.store_corpus import SHAPE, chunks_of, corpus_bytes, make_corpus
from tests.store_server_helpers import (
    CAPPED,
    EXACT,
    active_first_id,
    check_shape,
    errors_logged,
    first_id_of,
    ids_on_disk,
    memory_ids,
    store_env,
    wait_indexed,
    wait_token_indexed,
)

# ---- retention ---------------------------------------------------------------------


def test_retention_deletes_oldest_segments_and_their_index(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """With retention_files, the oldest segments go first, each with its index
    files; queries keep working and count exactly the events still on disk."""
    data = tmp_path / "data"
    events = make_corpus(20_000, seed=19)
    keep = 1
    env = store_env(
        persist__max_file_bytes="8192",
        persist__retention_files=str(keep),
        memory__capacity="1000",
    )
    server = server_factory("-P", str(data), env=env)
    # In small pieces, a query between them: each write rotates, and segments rotate
    # and go faster than the indexer follows.
    for chunk in chunks_of(events, 250):
        server.send(chunk)
        assert server.query("QUERY keyword=timeout limit=1").startswith("FOUND: ")
    total = len(events)
    high_water = wait_indexed(server, data, total)
    wait_for("retention", lambda: len(list_rotated(data)), lambda n: n <= keep)

    rotated = [first_id_of(p) for p in list_rotated(data)]
    deleted = [log for log in server.logs if log.get("event") == "segment_deleted"]
    assert len(rotated) == keep and len(deleted) > 20
    gone = [first_id_of(Path(str(log["path"]))) for log in deleted]
    assert gone == sorted(gone) and max(gone) < min(rotated)  # oldest first
    # The index: every kept segment's files, none of a deleted one's.
    indexed = {int(p.stem) for p in (data / "index").glob("*.chunks")}
    cols = {int(p.stem) for p in (data / "index").glob("*.cols")}
    assert set(rotated) <= indexed == cols
    assert indexed - set(rotated) <= {active_first_id(data)}, sorted(indexed)

    on_disk = ids_on_disk(data)
    first = on_disk[0]
    assert on_disk == list(range(first, total + 1)) and first > 1
    memory = memory_ids(server, total)
    assert memory.start <= high_water + 1  # the unindexed tail is in memory
    kept = range(first, total + 1)
    for name in ("everything", "keyword", "and", "level", "window_tail", "field_json", "asc"):
        check_shape(server, SHAPE[name], "all", events, kept)
        check_shape(server, SHAPE[name], "store", events, range(first, high_water + 1))
    assert not errors_logged(server)
    assert not [log for log in server.logs if log.get("level") == "warning"]


# ---- cost limits while ingest flows --------------------------------------------------


class PacedSender(threading.Thread):
    """Sends `chunk` (whole events) over one connection at `rate` events/s until stopped."""

    def __init__(self, port: int, chunk: bytes, events: int, rate: float) -> None:
        super().__init__(daemon=True)
        self.port, self.chunk, self.events, self.rate = port, chunk, events, rate
        self.done = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with socket.create_connection(("127.0.0.1", self.port)) as sock:
                start = time.monotonic()
                sent = 0
                while not self.done.is_set():
                    if sent < (time.monotonic() - start) * self.rate:
                        sock.sendall(self.chunk)
                        sent += self.events
                    else:
                        time.sleep(0.005)
        except BaseException as exc:
            self.error = exc

    def stop(self) -> None:
        self.done.set()
        self.join(10)
        assert not self.is_alive() and self.error is None, self.error


def delivered_in(server: ServerProcess, seconds: float) -> float:
    """Events delivered during the next `seconds`."""
    before = server.stats()["Delivered"]
    time.sleep(seconds)
    return server.stats()["Delivered"] - before


def timed_query(server: ServerProcess, command: str) -> tuple[str, float]:
    started = time.monotonic()
    reply = server.query(command, timeout=30)
    return reply, time.monotonic() - started


def test_cost_limits_while_ingest_flows(server_factory: ServerFactory, tmp_path: Path) -> None:
    """Over a 300k-event store: an unbounded query past query.max_scan and a
    pathological regex past query.timeout each end with `ERROR:` in time, bounded
    queries still answer, and a concurrent sender keeps ingesting meanwhile."""
    data = tmp_path / "data"
    corpus = corpus_bytes(make_corpus(30_000, seed=23))
    big = {"persist__max_file_bytes": str(8 << 20)}
    server = server_factory("-P", str(data), env=store_env(**big, query__max_scan="150000"))
    server.send(corpus * 10)
    total = 300_000
    wait_for(
        "indexing",
        server.stats,
        lambda s: s["Delivered"] == total and s["StoreIndexed"] > total - 20_000,
        timeout=40,
    )
    # query.max_scan: a query the store must read whole stops at the cap, at once.
    # (A keyword of two letters: no piece the token index could rule chunks out by.)
    reply, took = timed_query(server, f"QUERY keyword=zq max_count={EXACT}")
    assert reply.startswith("ERROR: query would scan more than 150000 stored events"), reply
    assert took < 5
    # Bounded ones answer: structured counts come from the chunk summaries. (The
    # corpus repeats its event times 10 times: the newest FATAL by event time may
    # lie in any copy's last chunk, so those ten, ~105k events, are read.)
    assert server.query("QUERY level=FATAL limit=1").startswith("FOUND: ")
    head = server.query("QUERY keyword=timeout limit=5").splitlines()[0]
    assert CAPPED.fullmatch(head), head
    assert server.stop() == 0

    timeout_s = 0.3
    server = server_factory("-P", str(data), env=store_env(**big, query__timeout=str(timeout_s)))
    chunk = corpus_bytes(make_corpus(1000, seed=29))
    sender = PacedSender(server.ingest_port, chunk, 1000, rate=60_000)
    sender.start()
    try:
        wait_for("ingest", server.stats, lambda s: s["Delivered"] > 10_000)
        baseline = delivered_in(server, 2.0)
        pathological = [
            # The store's own deadline (no memory part), a regex matching most lines.
            f'QUERY regex="(?i)(a|aa)*c" source=store max_count={EXACT}',
            f"QUERY keyword=e max_count={EXACT}",  # unbounded, every line a candidate
        ]
        replies: list[tuple[str, float]] = []
        window_end = time.monotonic() + 2.0

        def hammer(command: str) -> None:
            while time.monotonic() < window_end:
                replies.append(timed_query(server, command))

        threads = [threading.Thread(target=hammer, args=(c,)) for c in pathological]
        before = server.stats()["Delivered"]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        during = server.stats()["Delivered"] - before
    finally:
        sender.stop()
    print(f"cost limits: baseline={baseline} during={during} queries={[t for _, t in replies]}")
    assert len(replies) >= 2
    for reply, took in replies:
        assert reply.startswith("ERROR: query exceeded its time limit"), reply
        assert took < timeout_s + 2.5, took
    # Ingest kept its rate (a generous margin: two cores, queries and the indexer).
    assert baseline > 60_000, baseline
    assert during > baseline / 3, (during, baseline)
    stats = server.stats()
    print(f"cost limits: after the window {stats}")
    assert stats["Dropped"] == 0 and stats["SinkErrors"] == 0
    # A bounded query still answers within the small timeout from the store. (The
    # memory part, the unindexed tail, is scanned in Python: while the indexer
    # lags tens of thousands of events behind, it alone can pass 0.3 s.)
    reply = server.query("QUERY level=ERROR keyword=timeout source=store limit=3")
    assert reply.startswith("FOUND: "), reply


def test_lookups_are_charged_only_the_chunks_they_read(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """query.max_scan counts the events of the chunks a query reads: a lookup over a
    store six times larger answers, its value found through the token index (the
    bloom filters rule the other segments out before the walk), and so does a
    keyword in no chunk's terms; a text the index cannot decide is still refused."""
    data = tmp_path / "data"
    server = server_factory("-P", str(data), env=store_env(query__max_scan="10000"))
    lines = [
        f'level=info msg="order step" request_id=req-{n:07d} step={n % 5} host=web-{n % 9}'
        for n in range(60_000)
    ]
    server.send(("\n".join(lines) + "\n").encode())
    wait_for("indexing", server.stats, lambda s: s["StoreIndexed"] > 55_000, timeout=40)
    assert wait_token_indexed(data) > 10
    for value in ("req-0000042", "req-0031337"):
        reply = server.query(f"QUERY request_id={value} source=store max_count={EXACT}")
        assert reply.splitlines()[0] == "FOUND: 1 matches", reply
        assert f"request_id={value} " in reply.splitlines()[1]
    reply = server.query(f"QUERY keyword=no-such-word-anywhere source=store max_count={EXACT}")
    assert reply.strip() == "FOUND: 0 matches", reply
    # A value no chunk holds: every segment leaves the walk at its bloom probes.
    reply = server.query(f"QUERY request_id=req-9999999 source=store max_count={EXACT}")
    assert reply.strip() == "FOUND: 0 matches", reply
    reply = server.query(f"QUERY keyword=zq source=store max_count={EXACT}")
    assert reply.startswith("ERROR: query would scan more than 10000 stored events"), reply
    assert server.stop() == 0
