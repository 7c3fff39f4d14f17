"""Newest-first answers: the events timed by their receive time, taken first.

An event with no time of its own carries its receive time (SPEC §1), later
than any time its neighbours carry when senders ship what they logged a moment
ago. The walk (store/order.py) reads chunks by the best time a match in them
may have, so a chunk holding even one such event may hold the newest match:
with them spread over every chunk (plain-text lines among timed ones, the
simulator's Python-variant headers), the newest 100 matches cost a read of
every chunk, as much as counting them all.

Once the walk holds its `limit` rows and has counted `max_count` matches, and
only such events keep it going, `take_received_first` tests the rows of those
events in the chunks left, when they are few: their lines are gathered into one
buffer and scanned once (a scan per line costs 5-6 µs), and the matches are
offered to the top rows. The walk then orders the chunks left by their own-timed
events only, and offers only those rows of the chunks it reads (the others were
offered already); it still counts every match it reads. Not before: a lookup
whose matches are fewer than `limit` reads every chunk anyway, most of them
ruled out by the token index without a read, where testing these rows would
add to its cost.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from logcaster.event import Event
from logcaster.store.index import SegmentIndex
from logcaster.store.order import TopRows
from logcaster.store.scan import Scanner
from logcaster.store.search import ScanBudget, ids_of_rows, in_chunks, matching_rows
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
    at: int,
    top: TopRows,
    deadline: float,
    budget: ScanBudget,
) -> bool:
    """Offer the matching receive-timed rows of the chunks the walk has yet to read
    (from position `at`) to `top`, and walk those by own-timed events only; False
    (nothing done) when they are too many to pay. `where_mask`: the structured
    filter's row mask (None: no filter)."""
    rest = walk.order[at:]
    held = rest[walk.received[rest] > 0]
    total = int(walk.received[held].sum())
    rows_left = sum(
        int(segments[p].index.chunks["count"][walk.chunks[rest[walk.parts[rest] == p]]].sum())
        for p in np.unique(walk.parts[rest]).tolist()
    )
    if total == 0 or total > MAX_ROWS or total > rows_left * MAX_SHARE:
        return False
    for part in np.unique(walk.parts[held]).tolist():
        seg = segments[part]
        index = seg.index
        chunks = np.sort(walk.chunks[held[walk.parts[held] == part]]).tolist()
        rows = received_rows(index)
        rows = rows[in_chunks(rows, index.chunks, chunks)]
        if where_mask is not None:
            rows = rows[where_mask(index.cols[rows])]
        budget.charge(len(rows))
        if scanner is not None and len(rows):
            rows = matching_rows(scanner, seg.buf, index, rows, deadline)
        if confirm is not None and len(rows):
            rows = confirmed(confirm, seg, rows, deadline)
        top.add(index.cols["ts"][rows], ids_of_rows(index, rows), part, rows)
    walk.received_apart(at)
    return True


def received_rows(index: SegmentIndex) -> I64:
    """The rows of `index` timed by their receive time, ascending (kept with it)."""
    if index.received is None:
        index.received = np.flatnonzero(index.cols["own_ts"] == 0).astype(np.int64)
    return index.received
