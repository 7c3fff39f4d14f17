"""How many chunks the newest matches of a word cost (StoreReader.search's groups).

The walk reads chunks newest first in growing groups; once it has seen matches it
reads about as many chunks as the matches still missing need at the rate seen
(search.group_size), not four times the last group."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from logcaster.event import Event
from logcaster.options import QueryConfig
from logcaster.query.parser import build_query, parse_params
from logcaster.store.indexer import indexed_on_disk
from logcaster.store.reader import StoreReader
from logcaster.store.search import group_size
from tests.store_build import batches_of, build_store

LINES = 30_000
START = 1768867200.0


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Event]]:
    """Timed lines a second apart; `sparse` in about 1 of 50, `dense` in 1 of 2."""
    rnd = random.Random(3)
    lines = []
    for i in range(LINES):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(START + i))
        words = ["sparse"] * (rnd.random() < 0.02) + ["dense"] * (rnd.random() < 0.5)
        lines.append(f"ts={stamp}Z level=info msg=m{i} {' '.join(words)} pad={'x' * 70}".encode())
    directory = tmp_path_factory.mktemp("groups")
    batches = batches_of(lines, START + LINES + 60, 1 / 1000)
    return directory, build_store(directory, batches, max_bytes=1 << 20, chunk_bytes=16 * 1024)


@pytest.mark.parametrize("word", ["sparse", "dense"])
def test_the_newest_matches_read_about_the_chunks_they_need(
    store: tuple[Path, list[Event]], word: str
) -> None:
    directory, events = store
    want = sorted((e for e in events if word in e.body), key=lambda e: e.ts, reverse=True)
    query, _ = build_query(parse_params(f"keyword={word}"), QueryConfig())
    reader = StoreReader(directory)
    try:
        result = reader.search(
            query,
            indexed_on_disk(directory),
            limit=100,
            max_count=100,
            deadline=time.monotonic() + 30,
            max_scan=10**9,
        )
    finally:
        reader.close()
    assert [e.id for e in result.rows] == [e.id for e in want[:100]]
    assert result.count >= 100
    # The events from the newest to the 100th match; groups of 1, 4, 16, 64 chunks
    # read about twice as many for the sparse word.
    needed = len(events) - want[99].id + 1
    assert result.scanned < 1.5 * needed + 400, (result.scanned, needed)


def test_group_sizes() -> None:
    assert group_size(4, 1, 0, 100) == 4  # no match seen: grow as before
    assert group_size(16, 5, 50, 0) == 16  # nothing missing: only settling or counting
    assert group_size(16, 5, 55, 45) == 6  # 11 a chunk: 45 more take 4.1, and a quarter
    assert group_size(4, 1, 2, 98) == 4  # never more than the grown size
    assert group_size(64, 40, 4000, 1) == 1
