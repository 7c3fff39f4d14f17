"""The memory sink: a ring buffer of the most recent events (SPEC §5).

It stores batches, not events: appending is O(1) per batch and an event is only
parsed when a query first reads its batch. When full, whole batches are evicted
from the old end; the oldest batch may be partly evicted (`_skip` events of it
are no longer visible).

With the store on, events after the store's high-water id (`floor`) are not
yet queryable from the store, so they are kept past `capacity`, up to
`capacity + max_pinned` events: the planner answers them from here. If the
indexer falls further behind, the oldest are evicted anyway (memory stays
bounded) and queries say that some events wait for the indexer.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from logcaster.event import Batch, Event

_NO_FLOOR = 1 << 62  # no store: every event may be evicted


class MemorySink:
    name = "memory"

    def __init__(self, capacity: int, max_pinned: int = 0) -> None:
        self.capacity = capacity
        self.max_pinned = max_pinned
        self.floor = _NO_FLOOR  # ids above it are pinned (the store's high-water id)
        self.count = 0  # events visible now
        self.received = 0  # events ever written
        self.evicted = 0  # events pushed out by newer ones
        self.cleared = 0  # events removed by CLEAR
        self._batches: deque[Batch] = deque()
        self._skip = 0  # evicted events at the head of the oldest batch
        self.durable_id = 0  # the last id delivered: memory is as durable as it gets

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def write(self, batches: list[Batch]) -> None:
        self.append(batches)

    def append(self, batches: list[Batch]) -> None:
        ring = self._batches
        for batch in batches:
            ring.append(batch)
            self.count += len(batch)
            self.received += len(batch)
        if batches:
            self.durable_id = max(self.durable_id, batches[-1].last_id)
        self._evict()

    def set_floor(self, floor: int) -> None:
        """The store indexed every event up to `floor`: those need not stay pinned."""
        self.floor = floor
        self._evict()

    @property
    def oldest_id(self) -> int | None:
        """The id of the oldest event held (None when empty)."""
        if not self._batches:
            return None
        return self._batches[0].first_id + self._skip

    def _evict(self) -> None:
        ring = self._batches
        excess = self.count - self.capacity
        # Past this, even pinned events go: the indexer is too far behind.
        forced = self.count - self.capacity - self.max_pinned
        while excess > 0 and ring:
            head = ring[0]
            live = len(head) - self._skip
            start = head.first_id + self._skip
            free = min(live, max(0, self.floor - start + 1))
            take = min(excess, max(free, min(live, forced)))
            if take <= 0:
                break
            if take == live:
                ring.popleft()
                self._skip = 0
            else:
                self._skip += take
            self.count -= take
            self.evicted += take
            excess -= take
            forced -= take

    def clear(self) -> int:
        removed = self.count
        self._batches.clear()
        self._skip = 0
        self.count = 0
        self.cleared += removed
        return removed

    def snapshot(self) -> tuple[list[Batch], int]:
        """The batches now held (oldest first) and how many events of the first are gone."""
        return list(self._batches), self._skip

    def newest_first(self) -> Iterator[Event]:
        batches, skip = self.snapshot()
        last = len(batches) - 1
        for index in range(last, -1, -1):
            events = batches[index].events()
            low = skip if index == 0 else 0
            for i in range(len(events) - 1, low - 1, -1):
                yield events[i]

    def oldest_first(self) -> Iterator[Event]:
        batches, skip = self.snapshot()
        for index, batch in enumerate(batches):
            events = batch.events()
            yield from events[skip:] if index == 0 else events
