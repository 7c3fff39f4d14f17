"""The store's per-segment index files: round trip, summaries, torn tails (issue 5)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from logcaster.store.index import (
    CHUNK_DTYPE,
    COLS_DTYPE,
    SERVICE_SLOTS,
    ChunkRows,
    IndexWriter,
    index_paths,
    load_index,
)


def rows_for(first_id: int, n: int, byte_start: int, seed: int = 0) -> ChunkRows:
    rng = np.random.default_rng(seed + first_id)
    own = rng.random(n) < 0.8
    ts = np.where(own, 1_700_000_000.0 + first_id + np.arange(n), 1_800_000_000.0)
    return ChunkRows(
        first_id=first_id,
        byte_start=byte_start,
        byte_end=byte_start + 100 * n,
        ts=ts.astype(np.float64),
        offset=(byte_start + 100 * np.arange(n)).astype(np.uint32),
        service=rng.integers(0, 40, n).astype(np.uint16),
        level=rng.integers(0, 7, n).astype(np.uint8),
        own_ts=own,
    )


def write_chunks(segment: Path, sizes: list[int]) -> list[ChunkRows]:
    written = []
    first_id, byte = 1, 0
    with IndexWriter(segment) as writer:
        for n in sizes:
            rows = rows_for(first_id, n, byte)
            writer.append(rows)
            written.append(rows)
            first_id += n
            byte = rows.byte_end
    return written


def test_round_trip_and_summaries(tmp_path: Path) -> None:
    segment = tmp_path / "active.log"
    written = write_chunks(segment, [50, 1, 300])
    index = load_index(segment)
    assert index.torn_chunk_bytes == 0 and index.torn_col_rows == 0
    assert index.last_id == 351 and index.byte_end == written[-1].byte_end
    assert len(index.cols) == 351
    all_rows = np.concatenate([r.ts for r in written])
    assert np.array_equal(index.cols["ts"], all_rows)
    for rec, rows in zip(index.chunks, written, strict=True):
        assert int(rec["count"]) == len(rows.ts)
        assert list(rec["levels"]) == list(np.bincount(rows.level, minlength=7))
        own = rows.ts[rows.own_ts]
        if len(own):
            assert rec["ts_min"] == own.min() and rec["ts_max"] == own.max()
        else:
            assert math.isnan(rec["ts_min"]) and math.isnan(rec["ts_max"])
        if rows.own_ts.all():
            assert math.isnan(rec["rts_min"])
        else:
            assert rec["rts_min"] == 1_800_000_000.0
        codes = rec["service_codes"]
        counts = rec["service_counts"]
        real = counts > 0
        assert int(counts[real].sum()) + int(rec["other_services"]) == len(rows.ts)
        expected = dict(zip(*np.unique(rows.service, return_counts=True), strict=True))
        assert all(expected[c] == n for c, n in zip(codes[real], counts[real], strict=True))
        assert real.sum() == min(SERVICE_SLOTS, len(expected))
        # The top slots are the most frequent services.
        if len(expected) > SERVICE_SLOTS:
            assert min(counts[real]) >= sorted(expected.values())[-SERVICE_SLOTS]


def test_reopen_continues(tmp_path: Path) -> None:
    segment = tmp_path / "x.log"
    write_chunks(segment, [10, 10])
    with IndexWriter(segment) as writer:
        assert writer.last_id == 20 and not writer.repaired
        with pytest.raises(ValueError, match="not above 20"):
            writer.append(rows_for(20, 5, writer.byte_end))
        with pytest.raises(ValueError, match="before"):
            writer.append(rows_for(21, 5, 0))
        writer.append(rows_for(21, 5, writer.byte_end))
        writer.append(rows_for(40, 5, writer.byte_end))  # a gap between chunks is fine
    assert load_index(segment).last_id == 44


def test_a_batch_writes_its_records_after_all_its_rows(tmp_path: Path) -> None:
    """Inside `batch()` the rows are written at once and the records at its end (one
    round of fsyncs): meanwhile a reader sees the rows as a torn tail, never a
    record without its rows; an extended last chunk is rewritten, not added; and
    a batch that fails commits the chunks it wrote whole."""
    segment = tmp_path / "x.log"
    write_chunks(segment, [10])
    with IndexWriter(segment) as writer:
        with writer.batch():
            writer.append(rows_for(11, 5, writer.byte_end))
            writer.append(rows_for(16, 7, writer.byte_end))
            seen = load_index(segment)
            assert len(seen.chunks) == 1 and seen.last_id == 10
            assert len(seen.cols) == 10 and seen.torn_col_rows == 12
            start = writer.last_byte_start
            writer.extend_last(rows_for(16, 9, start))
        index = load_index(segment)
        assert list(index.chunks["count"]) == [10, 5, 9] and index.last_id == 24
        assert index.torn_col_rows == 0
        with pytest.raises(RuntimeError), writer.batch():
            writer.append(rows_for(25, 4, writer.byte_end))
            raise RuntimeError("the next chunk's extraction failed")
    assert load_index(segment).last_id == 28


@pytest.mark.parametrize("damage", ["cut_record", "cut_rows", "flip_record", "garbage"])
def test_torn_tail_is_cut_at_open(tmp_path: Path, damage: str) -> None:
    segment = tmp_path / "x.log"
    write_chunks(segment, [10, 10, 10])
    cols, chunks = index_paths(segment)
    if damage == "cut_record":
        chunks.write_bytes(chunks.read_bytes()[:-7])
    elif damage == "cut_rows":
        cols.write_bytes(cols.read_bytes()[: -COLS_DTYPE.itemsize * 3])
    elif damage == "flip_record":
        data = bytearray(chunks.read_bytes())
        data[2 * CHUNK_DTYPE.itemsize + 3] ^= 0x10
        chunks.write_bytes(bytes(data))
    else:
        with chunks.open("ab") as f:
            f.write(b"\x00" * (CHUNK_DTYPE.itemsize + 5))
    index = load_index(segment)
    expected_last = 30 if damage == "garbage" else 20
    assert index.last_id == expected_last
    assert index.torn_chunk_bytes or index.torn_col_rows
    with IndexWriter(segment) as writer:
        assert writer.repaired and writer.last_id == expected_last
        writer.append(rows_for(expected_last + 1, 4, writer.byte_end))
    index = load_index(segment)
    assert index.last_id == expected_last + 4
    assert index.torn_chunk_bytes == 0 and index.torn_col_rows == 0
    assert cols.stat().st_size == (expected_last + 4) * COLS_DTYPE.itemsize


def test_missing_files_are_an_empty_index(tmp_path: Path) -> None:
    index = load_index(tmp_path / "nothing.log")
    assert index.last_id is None and index.byte_end == 0 and len(index.cols) == 0


def test_chunk_rows_are_checked() -> None:
    with pytest.raises(ValueError):
        ChunkRows(1, 0, 10, *(np.zeros(0, t) for t in ("f8", "u4", "u2", "u1", "?")))
    with pytest.raises(ValueError):
        ChunkRows(
            1,
            0,
            10,
            np.zeros(2),
            np.zeros(1, np.uint32),
            np.zeros(2, np.uint16),
            np.zeros(2, np.uint8),
            np.ones(2, bool),
        )
