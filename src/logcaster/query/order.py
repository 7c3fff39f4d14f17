"""Event-time order of query answers: newest first (`order=desc`) or oldest
first (`order=asc`) by the event's time, ties by id, for every source.

`limit` picks the first rows of that order, so `TopEvents` keeps the best
`limit` events seen so far in a bounded heap while a scan visits events in
arrival order (memory's ring); the store does the same over its index columns
(store/order.py), and the planner merges both with `sort_events`.
"""

from __future__ import annotations

import heapq

from logcaster.event import Event


class TopEvents:
    """The first `limit` events by (ts, id) in the query's order; O(log limit) per
    event that enters, one tuple comparison per event that does not."""

    __slots__ = ("_heap", "_limit", "_newest_first")

    def __init__(self, limit: int, newest_first: bool) -> None:
        self._limit = limit
        self._newest_first = newest_first
        # A min-heap whose head is the worst event kept: keys are (ts, id), negated
        # for oldest first. Ids are unique, so events are never compared.
        self._heap: list[tuple[float, int, Event]] = []

    def add(self, ev: Event) -> None:
        key = (ev.ts, ev.id) if self._newest_first else (-ev.ts, -ev.id)
        heap = self._heap
        if len(heap) < self._limit:
            heapq.heappush(heap, (key[0], key[1], ev))
        elif heap and key > heap[0][:2]:
            heapq.heapreplace(heap, (key[0], key[1], ev))

    def events(self) -> list[Event]:
        """The events kept, best first."""
        return [item[2] for item in sorted(self._heap, reverse=True)]


def sort_events(events: list[Event], newest_first: bool) -> list[Event]:
    """`events` in the answer's order: by event time, ties by id."""
    return sorted(events, key=lambda ev: (ev.ts, ev.id), reverse=newest_first)
