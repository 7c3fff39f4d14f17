"""The walk of a store query: the chunks it may need, over every segment, best first.

Which chunks the level, service and time summaries (and, for a lookup, the
token index's bloom filters) leave, and the order a search reads them in: by
the best event time each may hold (store/order.py), so that the newest rows
are settled after the newest chunks when times follow arrival.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from logcaster.store.filters import RowFilter
from logcaster.store.order import chunk_keys
from logcaster.store.segment_view import SegmentView

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


class Walk:
    """The chunks a query may need, over every segment, best event time first.

    `parts`/`chunks`: segment number and chunk number of each chunk the
    summaries leave; `keys`: its best event time (order.chunk_keys); `known`:
    its match count from the summary (-1: the rows decide); `received`: its
    events timed by their receive time; `order`: the walk, ties by position
    (the newer chunk first when newest first)."""

    def __init__(
        self,
        where: RowFilter,
        segments: list[SegmentView],
        newest_first: bool,
        prune: Callable[[int, I64], npt.NDArray[np.bool_]] | None = None,
    ) -> None:
        """`prune(n, chunks)`: which of segment n's chunks may hold a match, beyond
        what the summaries tell (the token index's bloom filters, StoreReader)."""
        none = np.zeros(0, np.int64)
        parts: list[I64] = [none]
        chunks: list[I64] = [none]
        keys: list[F64] = [np.zeros(0, np.float64)]
        own: list[F64] = [np.zeros(0, np.float64)]
        received: list[I64] = [none]
        known: list[I64] = [none]
        best: list[I64] = [none]
        self.stored = 0
        for n, seg in enumerate(segments):
            table = seg.index.chunks
            self.stored += int(table["count"].sum())
            kept = np.arange(len(table))
            if prune is not None and len(kept):
                # Before the summaries: a lookup's value is in no chunk of most
                # segments, and those cost only their bloom probes.
                kept = kept[prune(n, kept)]
                if not len(kept):
                    continue
                table = table[kept]
            counts = where.chunk_counts(table)
            left = counts != 0
            kept, counts, table = kept[left], counts[left], table[left]
            parts.append(np.full(len(kept), n, np.int64))
            chunks.append(kept)
            key, own_key = chunk_keys(table, newest_first, where)
            keys.append(key)
            own.append(own_key)
            received.append(table["rlevels"].astype(np.int64).sum(axis=1))
            known.append(counts)
            # The chunk's best id, for ties: its last newest first, its first oldest first.
            ids = table["first_id"].astype(np.int64)
            if newest_first:
                ids += table["count"].astype(np.int64) - 1
            best.append(ids)
        self.parts: I64 = np.concatenate(parts)
        self.chunks: I64 = np.concatenate(chunks)
        self.keys: F64 = np.concatenate(keys)
        self.own_keys: F64 = np.concatenate(own)
        self.received: I64 = np.concatenate(received)
        self.known: I64 = np.concatenate(known)
        self.best_ids: I64 = np.concatenate(best)
        self.newest_first = newest_first
        self.order: I64 = self._order()

    def _order(self, rest: I64 | None = None) -> I64:
        """The walk (of the entries `rest` only): by key, ties newer chunk first."""
        at = np.arange(len(self.keys)) if rest is None else rest
        order = at[np.lexsort((self.chunks[at], self.parts[at], self.keys[at]))]
        return order[::-1] if self.newest_first else order

    def received_apart(self, at: int) -> None:
        """Walk the chunks from position `at` on by their own-timed events' times
        only: the receive-timed ones were taken apart (store/received_first.py)."""
        self.keys = self.own_keys
        self.order = np.concatenate((self.order[:at], self._order(self.order[at:])))
