"""The memory sink: a ring buffer of the most recent events (SPEC §5).

It stores batches, not events: appending is O(1) per batch and an event is only
parsed when a query first reads its batch. When full, whole batches are evicted
from the old end; the oldest batch may be partly evicted (`_skip` events of it
are no longer visible).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from logcaster.event import Batch, Event


class MemorySink:
    name = "memory"

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
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
        excess = self.count - self.capacity
        while excess > 0:
            live = len(ring[0]) - self._skip
            if excess >= live:
                ring.popleft()
                self._skip = 0
                self.count -= live
                self.evicted += live
                excess -= live
            else:
                self._skip += excess
                self.count -= excess
                self.evicted += excess
                excess = 0

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
