"""The indexer: incremental, restartable, exact against the full parser (issue 5)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from logcaster.options import MultilineConfig
from logcaster.parsing.codes import LEVEL_CODES
from logcaster.parsing.extract import Extractor
from logcaster.parsing.parse import parse_event
from logcaster.pipeline.batch import Batch
from logcaster.pipeline.framing import LineFramer
from logcaster.segments.blocks import decode_payload
from logcaster.segments.writer import SegmentWriter
from logcaster.store.filters import RowFilter
from logcaster.store.index import index_paths, load_index
from logcaster.store.indexer import SERVICES_NAME, SegmentIndexer, load_services

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import _corpus  # noqa: E402

RECEIVED = 1768867200.0


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    path = tmp_path_factory.mktemp("corpus") / "corpus.log"
    _corpus.generate(path, 60_000, seed=3)
    framer = LineFramer(64 * 1024, MultilineConfig())
    return framer.feed(path.read_bytes()) + framer.close()


def write(directory: Path, texts: list[bytes], per_batch: int = 700) -> list[Batch]:
    batches = [
        Batch(1 + a, RECEIVED + a / 1000, f"tcp:peer{a}", texts[a : a + per_batch])
        for a in range(0, len(texts), per_batch)
    ]
    with SegmentWriter(directory, fsync="never") as writer:
        writer.write_many(batches)
    return batches


def check_index(segment: Path, batches: list[Batch], extractor: Extractor) -> None:
    index = load_index(segment)
    data = segment.read_bytes()
    texts = [t for b in batches for t in b.texts]
    events = [
        parse_event(b.first_id + i, b.received_at, b.source, t)
        for b in batches
        for i, t in enumerate(b.texts)
    ]
    assert index.last_id == events[-1].id and len(index.cols) == len(events)
    cols = index.cols
    for row, ev, text in zip(cols, events, texts, strict=True):
        offset = int(row["offset"])
        line = data[offset : data.index(b"\n", offset) + 1]
        assert decode_payload(line, 1) == [text]
        assert float(row["ts"]) == ev.ts
        assert int(row["level"]) == LEVEL_CODES[ev.level]
        assert extractor.services.name(int(row["service"])) == ev.service
    # Summary-driven counts equal counts over the parsed events.
    error = LEVEL_CODES["ERROR"]
    mid = float(np.median([ev.ts for ev in events]))
    f = RowFilter(levels=frozenset({error}), time_from=mid - 600, time_to=mid + 600)
    expected = sum(1 for ev in events if ev.level == "ERROR" and mid - 600 <= ev.ts <= mid + 600)
    assert f.count(index) == expected


def test_incremental_indexing_matches_the_parser(tmp_path: Path, corpus: list[bytes]) -> None:
    batches = write(tmp_path, corpus)
    segment = tmp_path / "active.log"
    size = segment.stat().st_size
    extractor = Extractor()
    indexer = SegmentIndexer(segment, extractor, fsync=False, chunk_bytes=64 * 1024)
    # The durable end moves in steps that cut blocks in the middle.
    for end in (size // 7, size // 3, size // 3 + 1, size):
        indexer.catch_up(end)
        assert indexer.writer.byte_end <= end
    indexer.close()
    check_index(segment, batches, extractor)
    assert load_services(tmp_path).names == extractor.services.names


def test_restart_after_a_torn_index_continues(tmp_path: Path, corpus: list[bytes]) -> None:
    batches = write(tmp_path, corpus[:20_000])
    segment = tmp_path / "active.log"
    first = SegmentIndexer(segment, Extractor(load_services(tmp_path)), chunk_bytes=64 * 1024)
    first.catch_up(segment.stat().st_size // 2)
    first.close()
    cols, chunks = index_paths(segment)
    chunks.write_bytes(chunks.read_bytes()[:-11])  # a crash in the last record
    with cols.open("ab") as f:
        f.write(b"\x00" * 40)  # and rows of a chunk never committed
    extractor = Extractor(load_services(tmp_path))
    second = SegmentIndexer(segment, extractor, chunk_bytes=64 * 1024)
    assert second.writer.repaired
    second.catch_up()
    second.close()
    check_index(segment, batches, extractor)
    assert (tmp_path / SERVICES_NAME).exists()


def test_partial_tail_is_extended_not_duplicated(tmp_path: Path, corpus: list[bytes]) -> None:
    """Issue 14: the idle tail of active.log is indexed as a partial chunk; when
    the segment grows the chunk is extended in place (a restart in between
    included): every event once, no gap, and the same chunks as one pass."""
    texts = corpus[:12_000]
    per_batch = 300
    batches = [
        Batch(1 + a, RECEIVED + a / 1000, f"tcp:peer{a}", texts[a : a + per_batch])
        for a in range(0, len(texts), per_batch)
    ]
    segment = tmp_path / "active.log"
    chunk_bytes = 256 * 1024
    extractor = Extractor()
    indexer = SegmentIndexer(segment, extractor, fsync=False, chunk_bytes=chunk_bytes)
    with SegmentWriter(tmp_path, fsync="never") as writer:
        for n, batch in enumerate(batches):
            writer.write_many([batch])  # one write per call: the file holds it
            indexer.catch_up(partial_tail=True)  # every batch: an idle pass
            assert indexer.last_id == batch.last_id
            if n == len(batches) // 2:  # the indexer process restarts mid-way
                indexer.close()
                indexer = SegmentIndexer(segment, extractor, fsync=False, chunk_bytes=chunk_bytes)
    indexer.close()
    check_index(segment, batches, extractor)
    tailed = load_index(segment).chunks
    once = tmp_path / "once"
    once.mkdir()
    (once / "active.log").write_bytes(segment.read_bytes())
    single = SegmentIndexer(once / "active.log", Extractor(), fsync=False, chunk_bytes=chunk_bytes)
    single.catch_up(partial_tail=True)
    single.close()
    alone = load_index(once / "active.log").chunks
    for field in ("first_id", "count", "byte_start", "byte_end", "row_start", "levels"):
        assert (tailed[field] == alone[field]).all(), field
