"""Event-time order for store answers: the chunk walk order and the top rows.

Answers are ordered by event time, ties by id (newest first, or oldest first
with `order=asc`), and `limit` picks the first rows of that order, not of
arrival order. Event time is not monotonic in id (senders' clocks, events
with their own older timestamps), so the store walks chunks by the best event
time they can hold (a chunk's summary keeps its time ranges) and keeps the
best rows so far in numpy arrays. Once `limit` rows are held and the next
chunk's best time cannot beat the worst of them, no later chunk can: the
rows are settled, and only counting may go on. When times follow arrival
order (the usual case) that is after the newest chunk or two; events timed
by their receive time, spread over every chunk, are tested first, apart
(store/received_first.py), so that they do not make every chunk a candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from logcaster.store.filters import Cover, RowFilter

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


def chunk_keys(
    chunks: npt.NDArray[np.void], newest_first: bool, where: RowFilter
) -> tuple[F64, F64]:
    """The best event time a match in each chunk may have: the latest (newest
    first) or earliest (oldest first); then the same over its own-timed events
    only (the walk's order once the receive-timed rows were taken apart:
    store/received_first.py).

    Own-timed and receive-timed events are summarized apart; a part the
    level or time filter rules out does not count (plain-text events, timed
    by their receive time, would otherwise make every chunk look newest for
    `level=FATAL`). -inf/+inf: nothing in the chunk can match."""
    levels = chunks["levels"].astype(np.int64)
    r_levels = chunks["rlevels"].astype(np.int64)
    if where.levels is not None:
        wanted = [code for code in where.levels if code < levels.shape[1]]
        own_ok = (levels - r_levels)[:, wanted].sum(axis=1) > 0
        received_ok = r_levels[:, wanted].sum(axis=1) > 0
    else:
        own_ok = (levels - r_levels).sum(axis=1) > 0
        received_ok = r_levels.sum(axis=1) > 0
    if where.timed:
        own_ok &= where.covers(chunks["ts_min"], chunks["ts_max"]) != Cover.NONE.value
        received_ok &= where.covers(chunks["rts_min"], chunks["rts_max"]) != Cover.NONE.value
    edge = "max" if newest_first else "min"
    own = np.where(own_ok, chunks[f"ts_{edge}"], np.nan)
    received = np.where(received_ok, chunks[f"rts_{edge}"], np.nan)
    best = np.fmax(own, received) if newest_first else np.fmin(own, received)
    none = -np.inf if newest_first else np.inf
    keys: F64 = np.where(np.isnan(best), none, best).astype(np.float64)
    own_keys: F64 = np.where(np.isnan(own), none, own).astype(np.float64)
    return keys, own_keys


@dataclass(slots=True)
class TopRows:
    """The first `limit` rows by (event time, id) in the query's order.

    A row is (ts, id, part, row): `part` is the caller's segment number (-1:
    a row of another source, e.g. memory's, that competes for the same places).
    Kept sorted best first.
    """

    limit: int
    newest_first: bool
    ts: F64
    ids: I64
    parts: I64
    rows: I64

    @classmethod
    def empty(cls, limit: int, newest_first: bool) -> TopRows:
        return cls(
            limit,
            newest_first,
            np.zeros(0, np.float64),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
        )

    @property
    def full(self) -> bool:
        return len(self.ts) >= self.limit

    def can_take(self, keys: F64, ids: I64) -> npt.NDArray[np.bool_]:
        """Which chunks may hold a row that belongs here: `keys` their best event
        times (chunk_keys), `ids` their best ids (the last id newest first, the
        first oldest first), for the ties."""
        if not self.full:
            return np.ones(len(keys), bool)
        if self.limit == 0:
            return np.zeros(len(keys), bool)
        worst_ts, worst_id = float(self.ts[-1]), int(self.ids[-1])
        tie = keys == worst_ts
        can: npt.NDArray[np.bool_]
        if self.newest_first:
            can = (keys > worst_ts) | (tie & (ids > worst_id))
        else:
            can = (keys < worst_ts) | (tie & (ids < worst_id))
        return can

    def add(self, ts: F64, ids: I64, part: int, rows: I64) -> None:
        if not len(ts) or self.limit == 0:
            return
        if len(ts) > 2 * self.limit:
            # Many candidates (a common word, a whole chunk): a linear pass keeps
            # those at or past the limit-th best time (ties kept), then sort.
            kth = len(ts) - self.limit if self.newest_first else self.limit - 1
            bound = np.partition(ts, kth)[kth]
            near = ts >= bound if self.newest_first else ts <= bound
            ts, ids, rows = ts[near], ids[near], rows[near]
        all_ts = np.concatenate([self.ts, ts])
        all_ids = np.concatenate([self.ids, ids])
        all_parts = np.concatenate([self.parts, np.full(len(ts), part, np.int64)])
        all_rows = np.concatenate([self.rows, rows])
        order = np.lexsort((all_ids, all_ts))  # ascending by time, then id
        if self.newest_first:
            order = order[::-1]
        order = order[: self.limit]
        self.ts, self.ids = all_ts[order], all_ids[order]
        self.parts, self.rows = all_parts[order], all_rows[order]
