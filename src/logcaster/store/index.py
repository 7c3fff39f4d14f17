"""The store's per-segment index files (docs/store-design.md, "The indexer process").

For a segment `X.log` the index is two append-only files of fixed-size records:

- `X.cols`: one 16-byte row per event, in id order: event time (float64),
  the event line's byte offset in the segment (uint32), service code
  (uint16), level code (uint8), and whether the time is the event's own (1)
  or its receive time (0).
- `X.chunks`: one record per chunk (whole blocks, ~1 MiB of text): id range,
  payload byte range, where its rows start in `X.cols`, event-time and
  receive-time ranges (kept apart: receive times of events without their own
  time would otherwise widen every chunk's range and stop time pruning),
  per-level counts (all events, and those timed by their receive time), the
  top service counts, and a CRC32C over the record.

- `X.blocks`: one 16-byte record per block: its first event id and the
  offset of its header line, so a row's receive time and source are one
  header read away (a query turning rows into events needs them).

A chunk record is the commit point: it is written (and fsynced) after its
rows, so a record whose CRC holds and whose rows are all present describes a
complete chunk. The last chunk may be extended (`IndexWriter.extend_last`:
active.log's partial tail, indexed while idle, grows): its rows and block
entries are rewritten with the same bytes plus the new ones, then its record
is overwritten in place, so a reader sees either the old chunk or the new.
Anything after the last such record is a torn tail, cut off when the writer
opens. The index is derived data: it can always be rebuilt
from the segment.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import google_crc32c
import numpy as np
import numpy.typing as npt

from logcaster.durable_file import write_at

COLS_SUFFIX = ".cols"
CHUNKS_SUFFIX = ".chunks"
BLOCKS_SUFFIX = ".blocks"
LEVEL_SLOTS = 7  # level codes 0 (none) .. 6 (FATAL), see store.codes
SERVICE_SLOTS = 16  # the most frequent services of a chunk; the rest count as "other"

COLS_DTYPE = np.dtype(
    [("ts", "<f8"), ("offset", "<u4"), ("service", "<u2"), ("level", "u1"), ("own_ts", "u1")]
)
assert COLS_DTYPE.itemsize == 16

BLOCKS_DTYPE = np.dtype([("first_id", "<u8"), ("header_offset", "<u8")])

_CHUNK_FIELDS = [
    ("first_id", "<u8"),
    ("count", "<u4"),
    ("byte_start", "<u8"),
    ("byte_end", "<u8"),
    ("row_start", "<u8"),
    ("ts_min", "<f8"),  # over events with their own time (NaN if none)
    ("ts_max", "<f8"),
    ("rts_min", "<f8"),  # over events timed by their receive time (NaN if none)
    ("rts_max", "<f8"),
    ("levels", "<u4", (LEVEL_SLOTS,)),  # all events of the chunk, by level code
    ("rlevels", "<u4", (LEVEL_SLOTS,)),  # those timed by their receive time
    ("service_codes", "<u2", (SERVICE_SLOTS,)),
    ("service_counts", "<u4", (SERVICE_SLOTS,)),
    ("other_services", "<u4"),
]
_BODY_DTYPE = np.dtype(_CHUNK_FIELDS)
CHUNK_DTYPE = np.dtype([*_CHUNK_FIELDS, ("crc", "<u4")])
_BODY_SIZE = _BODY_DTYPE.itemsize


def index_paths(segment: Path) -> tuple[Path, Path]:
    """(cols, chunks) paths of the index of `segment`."""
    return (
        segment.with_name(segment.name + COLS_SUFFIX),
        segment.with_name(segment.name + CHUNKS_SUFFIX),
    )


def blocks_path(base: Path) -> Path:
    return base.with_name(base.name + BLOCKS_SUFFIX)


@dataclass(frozen=True, slots=True)
class ChunkRows:
    """The index input for one chunk: its position and one value per event."""

    first_id: int
    byte_start: int  # payload bytes of the chunk's blocks in the segment
    byte_end: int
    ts: npt.NDArray[np.float64]
    offset: npt.NDArray[np.uint32]  # each event line's byte offset in the segment
    service: npt.NDArray[np.uint16]
    level: npt.NDArray[np.uint8]
    own_ts: npt.NDArray[np.bool_]
    # Each block's first id and header offset (None: no block table is written).
    block_ids: npt.NDArray[np.uint64] | None = None
    block_offsets: npt.NDArray[np.uint64] | None = None

    def __post_init__(self) -> None:
        n = len(self.ts)
        if n == 0:
            raise ValueError("a chunk holds at least one event")
        if not all(len(a) == n for a in (self.offset, self.service, self.level, self.own_ts)):
            raise ValueError("every column of a chunk must have one value per event")
        if self.byte_end <= self.byte_start:
            raise ValueError("a chunk covers at least one byte")


def _crc(body: bytes) -> int:
    return int(google_crc32c.value(body))


def _summarize(rows: ChunkRows, row_start: int) -> npt.NDArray[np.void]:
    return summarize(
        rows.first_id,
        rows.byte_start,
        rows.byte_end,
        row_start,
        rows.ts,
        rows.level,
        rows.service,
        rows.own_ts,
    )


def summarize(
    first_id: int,
    byte_start: int,
    byte_end: int,
    row_start: int,
    ts: npt.NDArray[np.float64],
    level: npt.NDArray[np.uint8],
    service: npt.NDArray[np.uint16],
    own_ts: npt.NDArray[np.bool_],
) -> npt.NDArray[np.void]:
    """A chunk record (CHUNK_DTYPE, CRC set) over one value per event.

    Also used by the reader to cut a chunk at the high-water id (segment_view.cut_at_high_water)."""
    record = np.zeros(1, CHUNK_DTYPE)
    r = record[0]
    r["first_id"] = first_id
    r["count"] = len(ts)
    r["byte_start"] = byte_start
    r["byte_end"] = byte_end
    r["row_start"] = row_start
    own = ts[own_ts]
    received = ts[~own_ts]
    r["ts_min"], r["ts_max"] = (own.min(), own.max()) if len(own) else (np.nan, np.nan)
    r["rts_min"], r["rts_max"] = (
        (received.min(), received.max()) if len(received) else (np.nan, np.nan)
    )
    r["levels"] = np.bincount(level, minlength=LEVEL_SLOTS)[:LEVEL_SLOTS]
    r["rlevels"] = np.bincount(level[~own_ts], minlength=LEVEL_SLOTS)[:LEVEL_SLOTS]
    codes, counts = np.unique(service, return_counts=True)
    top = np.argsort(-counts, kind="stable")[:SERVICE_SLOTS]
    # Unused slots keep count 0 (every code, 0 and 65,535 included, is a real one).
    r["service_codes"][: len(top)] = codes[top]
    r["service_counts"][: len(top)] = counts[top]
    r["other_services"] = int(counts.sum() - counts[top].sum())
    r["crc"] = _crc(record.tobytes()[:_BODY_SIZE])
    return record


@dataclass(slots=True)
class SegmentIndex:
    """The verified index of one segment: chunk records and event rows."""

    chunks: npt.NDArray[np.void]  # CHUNK_DTYPE
    cols: npt.NDArray[np.void]  # COLS_DTYPE, rows of the verified chunks only
    torn_chunk_bytes: int = 0  # bytes after the last good chunk record
    torn_col_rows: int = 0  # rows after the last good chunk's rows
    # Block table (first id, header offset) of the verified chunks; may be empty.
    blocks: npt.NDArray[np.void] = field(default_factory=lambda: np.zeros(0, BLOCKS_DTYPE))
    # The rows timed by their receive time, found on first use (store/received_first.py):
    # an index never changes, a grown one is read as a new object.
    received: npt.NDArray[np.int64] | None = None

    @property
    def last_id(self) -> int | None:
        if not len(self.chunks):
            return None
        last = self.chunks[-1]
        return int(last["first_id"]) + int(last["count"]) - 1

    @property
    def byte_end(self) -> int:
        """Where the next chunk's text starts (0 for an empty index)."""
        return int(self.chunks[-1]["byte_end"]) if len(self.chunks) else 0


def load_index(segment: Path) -> SegmentIndex:
    """Read and verify the index of `segment` (read-only; missing files are empty).

    Stops at the first chunk record whose CRC fails, whose rows are missing, or
    that does not continue the previous one (ids, bytes and rows in order).
    """
    cols_path, chunks_path = index_paths(segment)
    raw = chunks_path.read_bytes() if chunks_path.exists() else b""
    whole = len(raw) // CHUNK_DTYPE.itemsize
    chunks = np.frombuffer(raw, CHUNK_DTYPE, count=whole)
    n_rows = cols_path.stat().st_size // COLS_DTYPE.itemsize if cols_path.exists() else 0
    good = 0
    next_id: int | None = None  # what the next record must continue from
    next_byte = next_row = 0
    for i in range(whole):
        rec = chunks[i]
        body = raw[i * CHUNK_DTYPE.itemsize : i * CHUNK_DTYPE.itemsize + _BODY_SIZE]
        if _crc(body) != int(rec["crc"]):
            break
        row_start, count = int(rec["row_start"]), int(rec["count"])
        if row_start + count > n_rows:
            break
        if next_id is not None and (
            int(rec["first_id"]) < next_id
            or int(rec["byte_start"]) < next_byte
            or row_start != next_row
        ):
            break
        next_id = int(rec["first_id"]) + count
        next_byte = int(rec["byte_end"])
        next_row = row_start + count
        good = i + 1
    rows = next_row
    # Mapped, not read: a query touches the rows of a few chunks, and the page
    # cache is shared with the indexer process that just wrote them.
    cols: npt.NDArray[np.void] = (
        np.memmap(cols_path, COLS_DTYPE, mode="r", shape=(rows,))
        if rows
        else np.zeros(0, COLS_DTYPE)
    )
    last_id = next_id - 1 if next_id is not None else 0
    return SegmentIndex(
        chunks=chunks[:good].copy(),
        cols=cols,
        blocks=_load_blocks(blocks_path(segment), last_id),
        torn_chunk_bytes=len(raw) - good * CHUNK_DTYPE.itemsize,
        torn_col_rows=n_rows - rows,
    )


def _load_blocks(path: Path, last_id: int) -> npt.NDArray[np.void]:
    """The block table's records of blocks up to `last_id` (the verified chunks)."""
    try:
        n = path.stat().st_size // BLOCKS_DTYPE.itemsize
    except FileNotFoundError:
        n = 0
    if n == 0 or last_id == 0:
        return np.zeros(0, BLOCKS_DTYPE)
    table: npt.NDArray[np.void] = np.memmap(path, BLOCKS_DTYPE, mode="r", shape=(n,))
    keep = int(np.searchsorted(table["first_id"], last_id, side="right"))
    return table[:keep]


class IndexWriter:
    """Appends chunks to the index of one segment (the indexer process owns it).

    Opening cuts a torn tail off the files. `append` writes the block table
    entries and the rows, then the chunk record, and fsyncs each in that order
    (with `fsync=True`), so a crash leaves at most a torn tail that the next
    open removes. Inside `batch()` the chunks appended share one round: all
    their rows and block entries, one fsync each file, then all their records
    and one fsync.
    """

    def __init__(self, segment: Path, *, fsync: bool = True) -> None:
        self.segment = segment
        self.fsync = fsync
        self._cols_path, self._chunks_path = index_paths(segment)
        index = load_index(segment)
        self.last_id = index.last_id
        self.byte_end = index.byte_end
        self._rows = len(index.cols)
        self._chunks = len(index.chunks)
        # The last chunk, which `extend_last` may grow: where it starts.
        self.last_first_id: int | None = None
        self.last_byte_start = 0
        self.last_header_offset: int | None = None  # its first block's header (None: unknown)
        self.last_count = 0
        self._last_row_start = 0
        self._last_block_start = 0
        if len(index.chunks):
            last = index.chunks[-1]
            self.last_first_id = int(last["first_id"])
            self.last_byte_start = int(last["byte_start"])
            self.last_count = int(last["count"])
            self._last_row_start = int(last["row_start"])
            self._last_block_start = int(
                np.searchsorted(index.blocks["first_id"], self.last_first_id, side="left")
            )
            if self._last_block_start < len(index.blocks):
                entry = index.blocks[self._last_block_start]
                if int(entry["first_id"]) == self.last_first_id:
                    self.last_header_offset = int(entry["header_offset"])
        # Records written by the next commit, by record number: their rows and
        # block entries are written, not yet made durable.
        self._pending: dict[int, bytes] = {}
        self._batched = False
        self._cols_fd = os.open(self._cols_path, os.O_RDWR | os.O_CREAT, 0o644)
        self._chunks_fd = os.open(self._chunks_path, os.O_RDWR | os.O_CREAT, 0o644)
        self._blocks_fd = os.open(blocks_path(segment), os.O_RDWR | os.O_CREAT, 0o644)
        # Cut what the verification did not accept (a torn or foreign tail).
        os.ftruncate(self._cols_fd, self._rows * COLS_DTYPE.itemsize)
        os.ftruncate(self._chunks_fd, len(index.chunks) * CHUNK_DTYPE.itemsize)
        self._blocks = len(index.blocks)
        os.ftruncate(self._blocks_fd, self._blocks * BLOCKS_DTYPE.itemsize)
        self.repaired = bool(index.torn_chunk_bytes or index.torn_col_rows)

    def append(self, rows: ChunkRows) -> None:
        # Ids increase; gaps (blocks lost to a quarantine) fall between chunks, never
        # inside one: a chunk's rows are ids first_id, first_id + 1, ...
        if self.last_id is not None and rows.first_id <= self.last_id:
            raise ValueError(f"chunk starts at id {rows.first_id}, not above {self.last_id}")
        if rows.byte_start < self.byte_end:
            raise ValueError(f"chunk starts at byte {rows.byte_start}, before {self.byte_end}")
        self._write(rows, self._rows, self._blocks, self._chunks)

    def extend_last(self, rows: ChunkRows) -> None:
        """Replace the last chunk by `rows`: the same start, more events.

        Its first rows and block entries are rewritten with the bytes they
        already hold (extraction is per event), so a query reading them
        meanwhile sees no change; the record is overwritten last. A crash in
        between leaves the old record (the extra rows are a torn tail) or a torn
        one (the chunk is dropped and re-indexed): the index is derived data."""
        if rows.first_id != self.last_first_id or rows.byte_start != self.last_byte_start:
            raise ValueError(f"chunk at id {rows.first_id} does not extend the last chunk")
        if len(rows.ts) <= self.last_count:
            raise ValueError("an extended chunk holds more events than before")
        self._write(rows, self._last_row_start, self._last_block_start, self._chunks - 1)

    def _write(self, rows: ChunkRows, row_start: int, block_start: int, record_at: int) -> None:
        """Write `rows` as the chunk starting at row `row_start`, block entry
        `block_start` and record number `record_at` (the last or a new one)."""
        n = len(rows.ts)
        table = np.empty(n, COLS_DTYPE)
        table["ts"] = rows.ts
        table["offset"] = rows.offset
        table["service"] = rows.service
        table["level"] = rows.level
        table["own_ts"] = rows.own_ts
        record = _summarize(rows, row_start)
        blocks_end = block_start
        if rows.block_ids is not None and rows.block_offsets is not None:
            blocks = np.empty(len(rows.block_ids), BLOCKS_DTYPE)
            blocks["first_id"] = rows.block_ids
            blocks["header_offset"] = rows.block_offsets
            write_at(self._blocks_fd, block_start * BLOCKS_DTYPE.itemsize, blocks.tobytes())
            blocks_end += len(blocks)
        write_at(self._cols_fd, row_start * COLS_DTYPE.itemsize, table.tobytes())
        self._pending[record_at] = record.tobytes()
        self._rows = row_start + n
        self._blocks = max(self._blocks, blocks_end)
        self._chunks = record_at + 1
        self.last_id = rows.first_id + n - 1
        self.byte_end = rows.byte_end
        self.last_first_id = rows.first_id
        self.last_byte_start = rows.byte_start
        self.last_header_offset = (
            int(rows.block_offsets[0]) if rows.block_offsets is not None else None
        )
        self.last_count = n
        self._last_row_start = row_start
        self._last_block_start = block_start
        if not self._batched:
            self.commit()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Chunks appended or extended inside are committed together at its end
        (also when it ends with an exception: each pending record's rows were
        written whole before it was queued). Measured: 3 fsyncs per 16-chunk
        indexer step instead of 48."""
        self._batched = True
        try:
            yield
        finally:
            self._batched = False
            self.commit()

    def commit(self) -> None:
        """Make the pending chunks' rows and block entries durable, then write their
        records and make those durable: a record never reaches the disk before
        what it describes."""
        if not self._pending:
            return
        if self.fsync:
            os.fsync(self._blocks_fd)
            os.fsync(self._cols_fd)
        for record_at in sorted(self._pending):
            write_at(self._chunks_fd, record_at * CHUNK_DTYPE.itemsize, self._pending[record_at])
        self._pending.clear()
        if self.fsync:
            os.fsync(self._chunks_fd)

    def close(self) -> None:
        for fd in (self._cols_fd, self._chunks_fd, self._blocks_fd):
            os.close(fd)

    def __enter__(self) -> IndexWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
