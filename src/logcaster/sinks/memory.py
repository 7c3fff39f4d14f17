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

CLEAR empties the buffer as its own views see it (COUNT, `source=memory`),
never the store: with the store on, cleared events the store has not indexed
yet stay held, hidden, and keep answering `source=all` (the planner's split
gives memory every id above the store's high-water id) until the store has
them. They are dropped as soon as the floor passes them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from logcaster.event import Event
from logcaster.metrics.registry import Metric, Readings
from logcaster.pipeline.batch import Batch

_NO_FLOOR = 1 << 62  # no store: every event may be evicted

CURRENT = Metric(
    "memory_events",
    "gauge",
    "Events in the memory buffer (COUNT; CLEAR empties it)",
    stats="Current",
)
EVICTED = Metric(
    "memory_evicted_events",
    "counter",
    "Events the memory buffer evicted for newer ones",
    stats="Evicted",
)
CAPACITY = Metric("memory_capacity_events", "gauge", "The memory buffer's size (memory.capacity)")


class MemorySink:
    name = "memory"
    option = "memory.capacity"
    endpoint = None

    def __init__(self, capacity: int, max_pinned: int = 0) -> None:
        self.capacity = capacity
        self.max_pinned = max_pinned
        self.floor = _NO_FLOOR  # ids above it are pinned (the store's high-water id)
        self.count = 0  # events visible now
        self.hidden = 0  # cleared events held for the store's split (ids <= hidden_through)
        self.hidden_through = 0  # CLEAR hid every event up to this id
        self.received = 0  # events ever written
        self.evicted = 0  # events pushed out by newer ones
        self.cleared = 0  # events removed by CLEAR
        self._batches: deque[Batch] = deque()
        self._skip = 0  # evicted events at the head of the oldest batch
        self.durable_id = 0  # the last id delivered: memory is as durable as it gets

    async def start(self) -> None:
        return None

    async def stop(self, deadline: float | None = None) -> None:
        return None

    async def close(self) -> None:
        return None

    def readings(self, out: Readings) -> None:
        out.add(CURRENT, self.count)
        out.add(EVICTED, self.evicted)
        out.add(CAPACITY, self.capacity)

    @property
    def last_id(self) -> int:
        return self._batches[-1].last_id if self._batches else 0

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
        self._drop_hidden()
        held = self.count + self.hidden
        excess = held - self.capacity
        # Past this, even pinned events go: the indexer is too far behind.
        forced = held - self.capacity - self.max_pinned
        while excess > 0 and ring:
            head = ring[0]
            live = len(head) - self._skip
            start = head.first_id + self._skip
            free = min(live, max(0, self.floor - start + 1))
            take = min(excess, max(free, min(live, forced)))
            if take <= 0:
                break
            self.evicted += take - self._drop_head(take)
            excess -= take
            forced -= take

    def _drop_head(self, take: int) -> int:
        """Remove `take` events (at most the first batch's) from the old end;
        how many of them were hidden (they are at the old end)."""
        head = self._batches[0]
        if take == len(head) - self._skip:
            self._batches.popleft()
            self._skip = 0
        else:
            self._skip += take
        hidden = min(take, self.hidden)
        self.hidden -= hidden
        self.count -= take - hidden
        return hidden

    def _drop_hidden(self) -> None:
        """Cleared events the store now holds (ids up to the floor) go."""
        ring = self._batches
        while self.hidden and ring:
            start = ring[0].first_id + self._skip
            take = min(len(ring[0]) - self._skip, self.hidden, self.floor - start + 1)
            if take <= 0:
                return
            self._drop_head(take)

    def clear(self) -> int:
        """Empty the buffer; with the store on, events it has not indexed stay
        held but hidden (see the module doc): CLEAR never hides stored events."""
        removed = self.count
        self.cleared += removed
        if self._batches and self.floor != _NO_FLOOR:
            self.hidden += self.count
            self.count = 0
            self.hidden_through = self._batches[-1].last_id
            self._drop_hidden()
            return removed
        self._batches.clear()
        self._skip = 0
        self.count = 0
        self.hidden = 0
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
                if events[i].id <= self.hidden_through:
                    return
                yield events[i]

    def oldest_first(self) -> Iterator[Event]:
        batches, skip = self.snapshot()
        for index, batch in enumerate(batches):
            events = batch.events()
            for ev in events[skip:] if index == 0 else events:
                if ev.id > self.hidden_through:
                    yield ev
