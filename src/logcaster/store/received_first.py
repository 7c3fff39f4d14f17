"""Newest-first answers: the events timed by their receive time, taken first.

An event with no time of its own carries its receive time (SPEC §1), later
than any time its neighbours carry when senders ship what they logged a moment
ago. The walk (store/order.py) reads chunks by the best time a match in them
may have, so a chunk holding even one such event may hold the newest match:
with them spread over every chunk (plain-text lines among timed ones, the
simulator's Python-variant headers), the newest 100 matches cost a read of
every chunk, as much as counting them all.

When such events are few, `take_received_first` tests their rows alone: their
lines are gathered into one buffer and scanned once (a scan per line costs
5-6 µs), and the matches are offered to the top rows. The walk then orders
chunks by their own-timed events only, and offers only those rows of the
chunks it reads (the others were offered already); it still counts every match.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from logcaster.event import Event
from logcaster.store.order import TopRows
from logcaster.store.scan import Scanner
from logcaster.store.scan_pool import time_limit_error
from logcaster.store.search import ScanBudget, ids_of_rows, in_chunks
from logcaster.store.segment_view import SegmentView
from logcaster.store.walk import Walk

I64 = npt.NDArray[np.int64]
# Receive-timed rows tested apart at most, and at most this share of the rows of
# the chunks walked (beyond, reading the chunks is as cheap).
MAX_ROWS = 65_536
MAX_SHARE = 1 / 8

Confirm = Callable[[Callable[[Event], bool], SegmentView, I64, float], I64]


def take_received_first(
    scanner: Scanner | None,
    where_mask: Callable[[npt.NDArray[np.void]], npt.NDArray[np.bool_]] | None,
    confirm: Callable[[Event], bool] | None,
    confirmed: Confirm,
    segments: list[SegmentView],
    walk: Walk,
    top: TopRows,
    deadline: float,
    budget: ScanBudget,
) -> bool:
    """Offer the walk's matching receive-timed rows to `top` and order the walk by
    own-timed events only; False (nothing done) when they are too many to pay.
    `where_mask`: the structured filter's row mask (None: no filter)."""
    held = walk.received > 0
    total = int(walk.received[held].sum())
    rows_walked = sum(
        int(segments[p].index.chunks["count"][walk.chunks[walk.parts == p]].sum())
        for p in np.unique(walk.parts).tolist()
    )
    if total == 0 or total > MAX_ROWS or total > rows_walked * MAX_SHARE:
        return False
    for part in np.unique(walk.parts[held]).tolist():
        seg = segments[part]
        index = seg.index
        chunks = np.sort(walk.chunks[held & (walk.parts == part)]).tolist()
        rows = np.flatnonzero(index.cols["own_ts"] == 0).astype(np.int64)
        rows = rows[in_chunks(rows, index.chunks, chunks)]
        if where_mask is not None:
            rows = rows[where_mask(index.cols[rows])]
        budget.charge(len(rows))
        if scanner is not None and len(rows):
            rows = matching_rows(scanner, seg, rows, deadline)
        if confirm is not None and len(rows):
            rows = confirmed(confirm, seg, rows, deadline)
        top.add(index.cols["ts"][rows], ids_of_rows(index, rows), part, rows)
    walk.received_apart()
    return True


def matching_rows(scanner: Scanner, seg: SegmentView, rows: I64, deadline: float) -> I64:
    """Which of `rows` (ascending) match `scanner`: their lines gathered and scanned once."""
    index = seg.index
    offsets = index.cols["offset"].astype(np.int64)
    starts = offsets[rows]
    # A row's line ends where the next line starts: the next row's, or the next
    # block's header. (Bytes past the line's newline are other lines: a match
    # there starts at no row's place and is dropped below.)
    last = int(index.chunks["byte_end"][-1])
    after = np.append(offsets[1:], last)[rows]
    headers = index.blocks["header_offset"].astype(np.int64)
    nxt = np.searchsorted(headers, starts, side="right")
    header = np.where(nxt < len(headers), headers[np.minimum(nxt, len(headers) - 1)], last)
    ends = np.minimum(after, header) if len(headers) else after
    buf = seg.buf
    lines = [buf[s:e] for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
    joined = b"".join(lines)
    at = np.zeros(len(lines), np.int64)
    np.cumsum(np.fromiter(map(len, lines), np.int64, len(lines))[:-1], out=at[1:])
    result = scanner.scan(joined, [(0, len(joined))], deadline=deadline)
    if result.stopped == "deadline":
        raise time_limit_error()
    found = np.asarray(result.offsets, np.int64)
    k = np.minimum(np.searchsorted(at, found), len(at) - 1)
    hit: I64 = rows[k[at[k] == found]]
    return hit
