"""Unit tests of the store's server side (issue 5): memory pinning above the store's
high-water id, the new query parameters, and the indexer when retention deletes a
segment under it."""

from __future__ import annotations

from pathlib import Path

import pytest

from logcaster.exceptions import QuerySyntaxError
from logcaster.options import QueryConfig
from logcaster.pipeline.batch import Batch
from logcaster.query.parser import parse_command
from logcaster.segments.names import list_rotated, parse_segment_name
from logcaster.segments.writer import SegmentWriter
from logcaster.sinks.memory import MemorySink
from logcaster.store.catalog import active_first_id, delete_index, index_base
from logcaster.store.index import index_paths, load_index
from logcaster.store.indexer import StoreIndexer
from logcaster.testing import ServerProcess

# ---- MemorySink pinning ---------------------------------------------------------------


def batches(first_id: int, count: int, size: int) -> list[Batch]:
    """`count` batches of `size` events with consecutive ids from `first_id`."""
    return [
        Batch(
            first_id + b * size, 1.0, "t", [b"e%d" % (first_id + b * size + i) for i in range(size)]
        )
        for b in range(count)
    ]


def held_ids(memory: MemorySink) -> list[int]:
    return [ev.id for ev in memory.oldest_first()]


def test_without_a_store_the_newest_capacity_events_stay() -> None:
    memory = MemorySink(10)
    memory.append(batches(1, 10, 10))
    assert memory.count == 10 and memory.oldest_id == 91 and memory.evicted == 90
    assert held_ids(memory) == list(range(91, 101))


def test_events_above_the_floor_are_pinned_up_to_max_pinned() -> None:
    """Unindexed events stay past capacity, up to capacity + max_pinned: past that the
    oldest go anyway (memory stays bounded)."""
    memory = MemorySink(10, max_pinned=50)
    memory.set_floor(0)  # the store indexed nothing yet
    for batch in batches(1, 4, 10):
        memory.append([batch])
    assert memory.count == 40 and memory.oldest_id == 1 and memory.evicted == 0
    for batch in batches(41, 6, 10):
        memory.append([batch])
    assert memory.count == 60 and memory.oldest_id == 41 and memory.evicted == 40
    assert held_ids(memory) == list(range(41, 101))


def test_set_floor_releases_what_the_store_indexed() -> None:
    memory = MemorySink(10, max_pinned=50)
    memory.set_floor(0)
    memory.append(batches(1, 5, 10))
    assert memory.count == 50
    memory.set_floor(30)  # 31..50 are still unindexed: kept past capacity
    assert memory.count == 20 and memory.oldest_id == 31
    memory.set_floor(45)  # capacity keeps the newest 10, indexed or not
    assert memory.count == 10 and memory.oldest_id == 41
    memory.set_floor(50)
    assert memory.count == 10 and held_ids(memory) == list(range(41, 51))
    memory.append(batches(51, 3, 10))  # above the floor: pinned, the indexed ones go
    assert memory.count == 30 and memory.oldest_id == 51 and memory.evicted == 50


def test_floor_inside_a_batch_evicts_part_of_it() -> None:
    memory = MemorySink(5, max_pinned=100)
    memory.set_floor(0)
    memory.append(batches(1, 1, 20))
    assert memory.count == 20
    memory.set_floor(7)
    batches_held, skip = memory.snapshot()
    assert len(batches_held) == 1 and skip == 7
    assert memory.count == 13 and memory.oldest_id == 8
    assert held_ids(memory) == list(range(8, 21))
    assert [ev.id for ev in memory.newest_first()] == list(range(20, 7, -1))


def test_clear_hides_unindexed_events_until_the_store_has_them() -> None:
    """Issue 14: CLEAR empties memory as COUNT and source=memory see it; events the
    store has not indexed stay held (hidden) for source=all, then go with the floor."""
    memory = MemorySink(10, max_pinned=50)
    memory.set_floor(20)
    memory.append(batches(1, 4, 10))  # 1..20 indexed (evicted past capacity), 21..40 not
    assert memory.count == 20 and memory.evicted == 20
    assert memory.clear() == 20 and memory.cleared == 20
    assert memory.count == 0 and memory.hidden == 20 and held_ids(memory) == []
    assert memory.oldest_id == 21 and memory.hidden_through == 40
    memory.append(batches(41, 1, 5))
    assert memory.count == 5 and held_ids(memory) == list(range(41, 46))
    batches_held, skip = memory.snapshot()  # the planner's view: 21..45
    assert batches_held[0].first_id + skip == 21
    memory.set_floor(35)  # the store has 21..35 now: they go
    assert (memory.hidden, memory.oldest_id, memory.count) == (5, 36, 5)
    memory.set_floor(45)
    assert (memory.hidden, memory.oldest_id, memory.count) == (0, 41, 5)
    assert memory.evicted == 20  # cleared events are not evictions


def test_clear_without_a_store_drops_everything() -> None:
    memory = MemorySink(10)
    memory.append(batches(1, 2, 5))
    assert memory.clear() == 10
    assert (memory.count, memory.hidden, memory.oldest_id) == (0, 0, None)


def test_max_pinned_zero_pins_nothing() -> None:
    memory = MemorySink(10, max_pinned=0)
    memory.set_floor(0)
    memory.append(batches(1, 10, 10))
    assert memory.count == 10 and memory.oldest_id == 91


def test_oldest_id_of_an_empty_buffer() -> None:
    memory = MemorySink(10, max_pinned=5)
    assert memory.oldest_id is None
    memory.append(batches(1, 1, 3))
    assert memory.oldest_id == 1
    assert memory.clear() == 3 and memory.oldest_id is None and memory.count == 0


# ---- the query parameters -------------------------------------------------------------

CONFIG = QueryConfig()


@pytest.mark.parametrize(
    ("line", "source"),
    [
        ("QUERY source=store", "store"),
        ("QUERY source=MEMORY keyword=x", "memory"),
        ("QUERY level=ERROR source=all", "all"),
        ("QUERY level=ERROR", None),  # the planner decides: all with the store on
    ],
)
def test_source_parameter(line: str, source: str | None) -> None:
    command = parse_command(line, CONFIG)
    assert command.query is not None and command.query.source == source


def test_max_count_parameter() -> None:
    command = parse_command("QUERY keyword=x max_count=5", CONFIG)
    assert command.query is not None and command.query.max_count == 5
    command = parse_command("QUERY keyword=x", CONFIG)
    assert command.query is not None and command.query.max_count is None  # the config's
    # Neither is a field test.
    command = parse_command("QUERY source=store max_count=7", CONFIG)
    assert command.query is not None and command.query.fields == ()


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("QUERY max_count=0", "max_count must be at least 1"),
        ("QUERY max_count=-3", "max_count must be a non-negative integer"),
        ("QUERY max_count=many", "max_count must be a non-negative integer"),
        ("QUERY source=disk", "source must be memory, store or all"),
        ("QUERY source=", "source= needs a value"),
    ],
)
def test_bad_parameters_are_rejected(line: str, reason: str) -> None:
    with pytest.raises(QuerySyntaxError, match=reason):
        parse_command(line, CONFIG)


def test_source_store_without_a_store(server: ServerProcess) -> None:
    """Over the wire: without persist.dir there is no store to ask."""
    server.send(b"one line\n")
    assert server.query("QUERY source=store").startswith("ERROR: source=store: the store is off")
    assert server.query("QUERY source=memory").startswith("FOUND: ")
    reply = server.query("QUERY source=disk")
    assert reply.startswith("ERROR: Invalid query syntax: source must be"), reply
    reply = server.query("QUERY max_count=0")
    assert reply.startswith("ERROR: Invalid query syntax: max_count must be at least 1"), reply


# ---- the indexer and retention ---------------------------------------------------------


def test_indexer_moves_past_a_segment_deleted_under_it(tmp_path: Path) -> None:
    """Retention deletes a segment the indexer had started (it was active.log, its
    partial last chunk waiting) before the indexer saw it rotated: the high-water
    id moves past it, as a fresh indexer's would, and no index of it is left."""
    writer = SegmentWriter(tmp_path, max_bytes=16 * 1024, fsync="never")
    next_id = 1

    def write(events: int) -> None:
        nonlocal next_id
        for _ in range(events // 10):
            texts = [b"event %06d %s" % (next_id + i, b"x" * 80) for i in range(10)]
            writer.write(next_id, texts, received=1.0, source="t")
            next_id += 10

    indexer = StoreIndexer(tmp_path, fsync=False, chunk_bytes=4096)
    try:
        write(100)  # ~9 KiB: active.log only, a few whole chunks and a partial one
        assert not list_rotated(tmp_path)
        indexer.catch_up(100)
        assert 0 < indexer.indexed_to(100) <= 100  # open: active.log may grow
        write(500)  # rotations
        doomed = list_rotated(tmp_path)[0]
        assert parse_segment_name(doomed.name) == 1
        # What retention and Store.segment_gone do, before the indexer's next pass.
        doomed.unlink()
        delete_index(tmp_path, 1)
        last = next_id - 1
        indexer.catch_up(last)
        high_water = indexer.indexed_to(last)
    finally:
        indexer.close()
        writer.close()
    active = active_first_id(tmp_path / "active.log")
    assert active is not None and high_water >= active - 1
    fresh = StoreIndexer(tmp_path, fsync=False, chunk_bytes=4096)
    try:
        fresh.catch_up(last)
        assert fresh.indexed_to(last) == high_water
    finally:
        fresh.close()
    assert not any(path.exists() for path in index_paths(index_base(tmp_path, 1)))


@pytest.mark.parametrize("step", [1, 2, 7])
def test_indexer_in_steps_reports_only_what_it_indexed(tmp_path: Path, step: int) -> None:
    """The indexer process indexes a backlog in steps of `max_chunks` and tells the
    server after each: across rotations, the high-water id never passes an event
    that is not in an index, grows step by step, and ends where one pass ends."""
    writer = SegmentWriter(tmp_path, max_bytes=16 * 1024, fsync="never")
    ids = 1
    for _ in range(150):
        texts = [b"event %06d %s" % (ids + i, b"x" * 80) for i in range(10)]
        writer.write(ids, texts, received=1.0, source="t")
        ids += 10
    writer.close()
    last = ids - 1
    assert len(list_rotated(tmp_path)) >= 5
    indexer = StoreIndexer(tmp_path, fsync=False, chunk_bytes=4096)
    marks = []
    try:
        for _ in range(1000):
            indexer.catch_up(last, tail=True, max_chunks=step)
            mark = indexer.indexed_to(last)
            indexed = set()
            for path in (tmp_path / "index").glob("*.chunks"):
                base = index_base(tmp_path, int(path.stem))
                indexed |= set(range(*_id_range(base)))
            assert set(range(1, mark + 1)) <= indexed, f"high water {mark} passes the index"
            marks.append(mark)
            if not indexer.unfinished:
                break
    finally:
        indexer.close()
    assert marks == sorted(marks) and len(set(marks)) > 3 and marks[-1] == last


def _id_range(base: Path) -> tuple[int, int]:
    """The ids an index holds: [first, last + 1)."""
    index = load_index(base)
    return int(base.name), (index.last_id or int(base.name) - 1) + 1
