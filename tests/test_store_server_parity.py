"""The store wired into a real server (issue 5): answers equal a brute-force pass.

One module-scoped server per memory setting holds the generated corpus
(tests/store_corpus.py) through small segments: most of it indexed, the tail
in memory only. Every query shape answers exactly the brute force from
`source=all`, `store` and `memory`, and FOUND stops at max_count by one rule
for every source.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from logcaster.options import MultilineConfig
from logcaster.parsing.parse import parse_event
from logcaster.pipeline.framing import LineFramer
from logcaster.segments.names import list_rotated
from logcaster.testing import ServerProcess, start_server
from tests.store_corpus import SHAPE, SHAPES, Known, Shape, corpus_bytes, expected, make_corpus
from tests.store_server_helpers import (
    ask,
    check_shape,
    errors_logged,
    memory_ids,
    store_env,
    wait_indexed,
    wait_token_indexed,
)

# ---- parity ------------------------------------------------------------------------


@dataclass
class Loaded:
    server: ServerProcess
    data: Path
    events: list[Known]
    capacity: int  # memory.capacity
    high_water: int  # the store's S once the load is indexed
    memory: range  # the ids memory holds then


PARITY_EVENTS = 30_000


@pytest.fixture(
    scope="module",
    # overlap: memory also holds indexed events (the split must not double them);
    # pinned: memory.capacity is below the unindexed tail, which stays pinned.
    params=[4000, 300],
    ids=["overlap", "pinned"],
)
def loaded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Loaded]:
    """One server with the corpus loaded: most of it indexed, the tail in memory only."""
    capacity: int = request.param
    data = tmp_path_factory.mktemp("parity") / "data"
    events = make_corpus(PARITY_EVENTS)
    server = start_server("-P", str(data), env=store_env(memory__capacity=str(capacity)))
    try:
        server.send(corpus_bytes(events))
        high_water = wait_indexed(server, data, len(events))
        if capacity == 4000:
            # Queries then read the token index (built after the event index, while
            # the indexer is idle); "pinned" queries whatever part of it is built.
            wait_token_indexed(data)
        memory = memory_ids(server, len(events))
        yield Loaded(server, data, events, capacity, high_water, memory)
    finally:
        server.kill()


def test_corpus_is_what_the_parser_sees() -> None:
    """The corpus's known fields are the parser's (so the brute force below is right)."""
    events = make_corpus(3000, seed=1)
    framer = LineFramer(64 * 1024, MultilineConfig())
    texts = framer.feed(corpus_bytes(events)) + framer.close()
    assert len(texts) == len(events)
    received = time.time()
    for i, (known, text) in enumerate(zip(events, texts, strict=True)):
        ev = parse_event(i + 1, received, "tcp:x", text)
        own_ts = None if ev.ts == received else ev.ts
        got = (
            ev.body,
            ev.level,
            ev.service,
            own_ts,
            ev.fields.get("user"),
            ev.fields.get("tenant"),
        )
        assert got == (known.text, known.level, known.service, known.ts, known.user, known.tenant)
    kinds = {text[:1] for text in texts}
    assert {b"[", b"{", b"t"} <= kinds and sum(b"\n" in t for t in texts) > 100


def test_corpus_loaded_as_built(loaded: Loaded) -> None:
    """The load is what the parity tests need: several segments indexed, a tail in
    memory only (pinned past memory.capacity when it is larger), ids as sent."""
    total = len(loaded.events)
    stats = loaded.server.stats()
    assert stats["Total"] == stats["Delivered"] == total and stats["Dropped"] == 0
    assert len(list_rotated(loaded.data)) >= 10
    assert total // 2 < loaded.high_water < total  # most indexed, the tail not
    assert loaded.memory.stop == total + 1
    tail = total - loaded.high_water
    if tail > loaded.capacity:  # pinned: exactly the unindexed events stay
        assert loaded.memory.start == loaded.high_water + 1
        assert stats["Current"] == tail > loaded.capacity
    else:  # memory also holds indexed events
        assert stats["Current"] == loaded.capacity
        assert loaded.memory.start <= loaded.high_water
    assert stats["IndexerRestarts"] == 0
    assert not errors_logged(loaded.server)


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_parity_with_brute_force(loaded: Loaded, shape: Shape) -> None:
    """memory, store and all (and the default, all) answer exactly the brute force."""
    events, server = loaded.events, loaded.server
    check_shape(server, shape, "all", events, range(1, len(events) + 1))
    check_shape(server, shape, None, events, range(1, len(events) + 1))
    check_shape(server, shape, "store", events, range(1, loaded.high_water + 1))
    check_shape(server, shape, "memory", events, loaded.memory)


@pytest.mark.parametrize("source", ["all", "store", "memory"])
def test_found_is_capped_at_max_count(loaded: Loaded, source: str) -> None:
    """One rule for every source (issue 14): FOUND is exact up to max_count, then
    exactly `FOUND: M+ matches (counting stops at max_count=M)`; the rows are
    still exactly the first matches in event-time order."""
    events, server = loaded.events, loaded.server
    ids = {
        "all": range(1, len(events) + 1),
        "store": range(1, loaded.high_water + 1),
        "memory": loaded.memory,
    }[source]
    for shape in (SHAPE["keyword"], SHAPE["field_json"], SHAPE["small_limit"]):
        count, rows = expected(replace(shape, limit=5), events, ids)
        assert count > 6, (shape.name, count)
        cap = count // 3
        doc = ask(server, shape, source, max_count=cap, limit=5)
        assert (doc["found"], doc["capped"], doc["max_count"]) == (cap, True, cap)
        assert [int(ev["id"]) for ev in doc["events"]] == rows[:5]
        reply = server.query(f"QUERY {shape.params} source={source} max_count={cap} limit=5")
        head, *lines = reply.splitlines()
        assert head == f"FOUND: {cap}+ matches (counting stops at max_count={cap})", reply
        assert lines == [text_row(ev) for ev in doc["events"]]
        # Exactly max_count matches is exact; one fewer allowed is "N+".
        doc = ask(server, shape, source, max_count=count)
        assert (doc["found"], doc["capped"]) == (count, False)
        doc = ask(server, shape, source, max_count=count - 1)
        assert (doc["found"], doc["capped"]) == (count - 1, True)
    # The default cap (query.max_count = 100), whatever the rows asked: the
    # answer of issue 14 was "260+" here.
    count, _ = expected(SHAPE["keyword"], events, ids)
    for limit in (1, 100, 1000):
        head = server.query(f"QUERY keyword=timeout source={source} limit={limit}")
        head = head.splitlines()[0]
        if count > 100:
            assert head == "FOUND: 100+ matches (counting stops at max_count=100)", head
        else:
            assert head == f"FOUND: {count} matches", head


def text_row(ev: dict[str, Any]) -> str:
    """The text protocol's row of a JSON event: `[time] first line`."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(ev["ts"])))
    first_line = str(ev["body"]).partition("\n")[0]
    return f"[{when}] {first_line}"
