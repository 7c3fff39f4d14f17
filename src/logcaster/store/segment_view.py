"""A segment as one query sees it, and its index rows read back as events.

The reader (store/reader.py) keeps, per segment, its verified index and an
mmap of its text (`CachedIndex`); a query gets them cut at the high-water id `S`
(`cut_at_high_water` -> `SegmentView`): a chunk the indexer extended past `S` is cut and its
summary recomputed, so the store never answers an event memory also answers.
The rows a query keeps become events here: each row's escaped line, with the
receive time and source of its block's header (found through the block
table, or by searching back for the block magic), parsed by `parse_event`.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from logcaster.event import Event
from logcaster.parsing.parse import parse_event
from logcaster.segments.blocks import MAGIC, parse_header
from logcaster.store.index import SegmentIndex, summarize
from logcaster.store.order import TopRows
from logcaster.store.search import ids_of_rows
from logcaster.store.text_match import stored_line_text

I64 = npt.NDArray[np.int64]
_HEADER_LOOKBACK = 1 << 20  # a row's block header is searched this far back at a time


@dataclass(frozen=True, slots=True)
class SegmentView:
    """One segment as a query sees it: the index cut at `S`, the mapped text."""

    first_id: int
    path: Path
    index: SegmentIndex
    buf: mmap.mmap | bytes


@dataclass(slots=True)
class CachedIndex:
    path: Path
    chunks_size: int
    index: SegmentIndex
    buf: mmap.mmap | bytes
    # The high-water id it was read for: an index short of it (S may pass ids
    # never written, cut by tail sampling) is not read again for the same S.
    read_for: int = 0


def cut_at_high_water(first_id: int, cached: CachedIndex, high_water: int) -> SegmentView | None:
    """The segment's index without the events past `high_water` (memory has those).

    A chunk the indexer extended past `S` before reporting it is cut at `S`,
    its summary recomputed from its rows: the store never answers an event
    memory also answers."""
    index = cached.index
    chunks = index.chunks
    keep = int(np.searchsorted(chunks["first_id"].astype(np.int64), high_water, side="right"))
    if keep == 0:
        return None
    last = chunks[keep - 1]
    first, count = int(last["first_id"]), int(last["count"])
    if first + count - 1 > high_water:
        chunks = chunks[:keep].copy()
        start = int(last["row_start"])
        n = high_water - first + 1
        cols = index.cols[start : start + count]
        chunks[keep - 1] = summarize(
            first,
            int(last["byte_start"]),
            int(cols["offset"][n]),  # the first line past S starts after the kept text
            start,
            cols["ts"][:n],
            cols["level"][:n],
            cols["service"][:n],
            cols["own_ts"][:n].astype(bool),
        )[0]
        index = SegmentIndex(chunks=chunks, cols=index.cols[: start + n], blocks=index.blocks)
    elif keep < len(chunks):
        rows = int(last["row_start"]) + count
        index = SegmentIndex(chunks=chunks[:keep], cols=index.cols[:rows], blocks=index.blocks)
    return SegmentView(first_id, cached.path, index, cached.buf)


def top_events(segments: list[SegmentView], top: TopRows) -> list[Event]:
    """The store's rows among `top` as events, in its order (each parsed once)."""
    mine = top.parts >= 0
    parts, rows = top.parts[mine], top.rows[mine]
    found: dict[tuple[int, int], Event] = {}
    for part in np.unique(parts).tolist():
        picked = np.sort(rows[parts == part])
        for row, event in zip(picked.tolist(), events_at_rows(segments[part], picked), strict=True):
            found[(part, row)] = event
    return [found[(p, r)] for p, r in zip(parts.tolist(), rows.tolist(), strict=True)]


def events_at_rows(seg: SegmentView, rows: I64) -> Iterator[Event]:
    """The parsed events of index rows, in the order given."""
    if not len(rows):
        return
    index = seg.index
    ids = ids_of_rows(index, rows)
    offsets = index.cols["offset"][rows].astype(np.int64)
    buf = seg.buf
    # Each row's block header, from the block table (older indexes: searched).
    table = index.blocks
    headers: list[int] | None = None
    if len(table):
        at = np.searchsorted(table["first_id"], ids.astype(np.uint64), side="right") - 1
        headers = table["header_offset"][np.maximum(at, 0)].astype(np.int64).tolist()
    lo = hi = -1  # payload range of the block the last row was in
    received, source = 0.0, ""
    for n, (event_id, offset) in enumerate(zip(ids.tolist(), offsets.tolist(), strict=True)):
        if not lo <= offset < hi:
            header_at = headers[n] if headers is not None else None
            lo, hi, received, source = _block_of(buf, offset, header_at)
        text = stored_line_text(buf[offset : buf.find(b"\n", offset)])
        yield parse_event(event_id, received, source, text)


def _block_of(
    buf: mmap.mmap | bytes, offset: int, header_at: int | None = None
) -> tuple[int, int, float, str]:
    """The block holding a row's line: (payload start, payload end, receive time, source).

    Its header starts at `header_at` when the block table says so; otherwise it
    is the last line before the row that starts with the block magic (no payload
    line can: a leading `#` is escaped).
    """
    if header_at is not None and header_at <= offset:
        end = buf.find(b"\n", header_at) + 1
        header = parse_header(bytes(buf[header_at:end]))
        if header is not None and end <= offset < end + header.payload_bytes:
            return end, end + header.payload_bytes, header.received, header.source
    lo = offset
    while True:
        lo = max(0, lo - _HEADER_LOOKBACK)
        at = buf.rfind(b"\n" + MAGIC, lo, offset)
        if at >= 0:
            start = at + 1
            break
        if lo == 0:
            start = 0  # the file's first block
            break
    end = buf.find(b"\n", start) + 1
    header = parse_header(bytes(buf[start:end]))
    if header is None:  # not a block: the row's own line is all we know
        return offset, offset + 1, 0.0, ""
    return end, end + header.payload_bytes, header.received, header.source
