"""Cutting segments into the store's chunks: line offsets, ids, bounds (issue 5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from logcaster.pipeline.batch import Batch
from logcaster.segments.blocks import decode_payload
from logcaster.segments.writer import SegmentWriter
from logcaster.store.chunks import StoreFormatError, iter_chunks

TEXTS = [
    b"plain line",
    b"ERROR boom\n    at a.b(C.java:1)\n    at c.d(E.java:2)",
    b"#starts with a hash",
    b"back\\slash and \\n literal",
    b"cr\r in the middle",
]


def write_segment(path: Path, batches: list[tuple[int, int]]) -> list[Batch]:
    """Write batches (first_id, n) with texts cycling through TEXTS; return them."""
    written = []
    with SegmentWriter(path, fsync="never") as writer:
        for first_id, n in batches:
            texts = [
                b"%d %s" % (first_id + i, TEXTS[(first_id + i) % len(TEXTS)]) for i in range(n)
            ]
            batch = Batch(first_id, 1_700_000_000.0 + first_id, f"tcp:peer{first_id}", texts)
            writer.write_many([batch])
            written.append(batch)
    return written


def test_line_offsets_find_each_event(tmp_path: Path) -> None:
    written = write_segment(tmp_path, [(1, 40), (41, 3), (44, 100)])
    segment = tmp_path / "active.log"
    data = segment.read_bytes()
    chunks = list(iter_chunks(segment, chunk_bytes=500))
    assert len(chunks) > 1
    expected = {b.first_id + i: (t, b.received_at) for b in written for i, t in enumerate(b.texts)}
    next_id = 1
    for chunk in chunks:
        assert chunk.first_id == next_id
        for i, offset in enumerate(chunk.line_offsets):
            line = data[int(offset) : data.index(b"\n", int(offset)) + 1]
            text, received = expected[chunk.first_id + i]
            assert decode_payload(line, 1) == [text]
            assert chunk.received[i] == received
        assert b"".join(chunk.payloads) == b"".join(data[a:b] for a, b in chunk.ranges)
        next_id = chunk.last_id + 1
    assert next_id == 144


def test_id_gap_splits_a_chunk_and_start_end_bound_the_read(tmp_path: Path) -> None:
    write_segment(tmp_path, [(1, 5), (6, 5), (20, 5)])
    segment = tmp_path / "active.log"
    chunks = list(iter_chunks(segment))
    assert [(c.first_id, c.count) for c in chunks] == [(1, 10), (20, 5)]
    assert [s for _, s in chunks[0].sources] == ["tcp:peer1", "tcp:peer6"]
    # Resume after the first chunk's blocks; stop before the last block ends.
    first_end = chunks[0].byte_end
    resumed = list(iter_chunks(segment, start=first_end))
    assert [(c.first_id, c.count) for c in resumed] == [(20, 5)]
    assert [(c.first_id, c.count) for c in iter_chunks(segment, end=first_end)] == [(1, 10)]
    assert [(c.first_id, c.count) for c in iter_chunks(segment, end=chunks[1].byte_end - 1)] == [
        (1, 10)
    ]


def test_json_blocks_are_refused(tmp_path: Path) -> None:
    with SegmentWriter(tmp_path, fsync="never") as writer:
        writer.write(1, [b"x"], mode="json")
    with pytest.raises(StoreFormatError, match="raw"):
        list(iter_chunks(tmp_path / "active.log"))
