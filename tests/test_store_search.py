"""One segment searched through its index equals a brute-force pass (issue 5)."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

from logcaster.event import Event
from logcaster.options import MultilineConfig
from logcaster.parsing.codes import LEVEL_CODES
from logcaster.parsing.extract import Extractor
from logcaster.parsing.parse import parse_event
from logcaster.pipeline.batch import Batch
from logcaster.pipeline.framing import LineFramer
from logcaster.query.model import Query
from logcaster.segments.writer import SegmentWriter
from logcaster.store.filters import RowFilter
from logcaster.store.index import load_index
from logcaster.store.indexer import SegmentIndexer
from logcaster.store.scan import Scanner
from logcaster.store.search import search_segment

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import _corpus  # noqa: E402

RECEIVED = 1768867200.0


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Event], Extractor]:
    directory = tmp_path_factory.mktemp("store")
    path = directory / "corpus.log"
    _corpus.generate(path, 40_000, seed=7)
    framer = LineFramer(64 * 1024, MultilineConfig())
    texts = framer.feed(path.read_bytes()) + framer.close()
    batches = [
        Batch(1 + a, RECEIVED + a / 1000, "tcp:x", texts[a : a + 500])
        for a in range(0, len(texts), 500)
    ]
    with SegmentWriter(directory, fsync="never") as writer:
        writer.write_many(batches)
    extractor = Extractor()
    segment = directory / "active.log"
    indexer = SegmentIndexer(segment, extractor, fsync=False, chunk_bytes=128 * 1024)
    indexer.catch_up()
    indexer.close()
    events = [
        parse_event(b.first_id + i, b.received_at, b.source, t)
        for b in batches
        for i, t in enumerate(b.texts)
    ]
    return segment, events, extractor


def _mid(events: list[Event]) -> float:
    return sorted(ev.ts for ev in events)[len(events) // 2]


QUERIES = [
    Query(keywords=("timeout",)),
    Query(regex=r"(timeout|refused).*within [0-9]+"),
    Query(levels=frozenset({"ERROR"})),
    Query(levels=frozenset({"ERROR", "WARN"}), services=frozenset({"payment-api"})),
    Query(keywords=("Connection",), levels=frozenset({"ERROR"})),
    Query(keywords=("user", "req-"), operator="OR", services=frozenset({"user-service"})),
    Query(keywords=("#LC2",)),  # only block headers contain it: no event
    Query(),
]


@pytest.mark.parametrize("query", QUERIES, ids=range(len(QUERIES)))
@pytest.mark.parametrize("window", [False, True])
def test_search_equals_brute_force(
    store: tuple[Path, list[Event], Extractor], query: Query, window: bool
) -> None:
    segment, events, extractor = store
    if window:
        mid = _mid(events)
        query = replace(query, time_from=mid - 300, time_to=mid + 300)
    match = query.matcher()
    expected = [ev.id for ev in events if match(ev)]
    codes = {extractor.services.get(name) for name in query.services}
    assert None not in codes  # every service asked for occurs in the corpus
    where = RowFilter(
        levels=frozenset(LEVEL_CODES[lv] for lv in query.levels) or None,
        services=frozenset(c for c in codes if c is not None) or None,
        time_from=query.time_from,
        time_to=query.time_to,
    )
    scanner = (
        Scanner(query.keywords, query.operator, query.regex)
        if query.keywords or query.regex
        else None
    )
    data = segment.read_bytes()
    index = load_index(segment)
    newest = search_segment(data, index, scanner, where, limit=25)
    assert newest.count == len(expected)
    assert newest.ids == expected[::-1][:25]
    oldest = search_segment(data, index, scanner, where, limit=25, newest_first=False, threads=2)
    assert oldest.count == len(expected) and oldest.ids == expected[:25]


def test_rows_become_the_stored_events_with_and_without_the_block_table(
    store: tuple[Path, list[Event], Extractor],
) -> None:
    """A row's receive time and source come from its block header: found through
    the block table, or by searching back when an index has none; both agree."""
    import mmap

    import numpy as np

    from logcaster.store.index import BLOCKS_DTYPE, SegmentIndex
    from logcaster.store.segment_view import SegmentView, events_at_rows

    segment, events, _ = store
    index = load_index(segment)
    assert len(index.blocks) == len(events) // 500 + (len(events) % 500 > 0)
    rows = np.array([0, 1, 499, 500, 501, len(events) // 2, len(events) - 1], np.int64)
    want = [events[r] for r in rows.tolist()]
    with open(segment, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        bare = SegmentIndex(chunks=index.chunks, cols=index.cols, blocks=np.zeros(0, BLOCKS_DTYPE))
        for idx in (index, bare):
            got = list(events_at_rows(SegmentView(1, segment, idx, buf), rows))
            assert [(e.id, e.received_at, e.source, e.body) for e in got] == [
                (e.id, e.received_at, e.source, e.body) for e in want
            ]
