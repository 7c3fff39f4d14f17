"""The bounded queue between sources and sinks (SPEC §4; the policies are in admission.py).

Sources run inside asyncio protocol callbacks and cannot wait, so `put` always
accepts and returns whether the queue is now full; the source then pauses
reading its socket (TCP pushes back on the sender) and registers a callback
that resumes it once the queue has drained below its low watermark. The queue
can therefore pass its bounds by at most one read per connection, itself
bounded by the read size and `ingest.max_connections`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from logcaster.metrics.registry import Metric, Readings
from logcaster.pipeline.batch import Batch

QUEUE_EVENTS = Metric("queue_events", "gauge", "Events in the queue", stats="QueueEvents")
QUEUE_BYTES = Metric(
    "queue_bytes", "gauge", "Bytes in the queue (texts + 40 per event)", stats="QueueBytes"
)
QUEUE_PEAK_EVENTS = Metric(
    "queue_peak_events", "gauge", "Most events the queue held", stats="QueuePeakEvents"
)
QUEUE_PEAK_BYTES = Metric(
    "queue_peak_bytes", "gauge", "Most bytes the queue held", stats="QueuePeakBytes"
)
QUEUE_CAPACITY_EVENTS = Metric(
    "queue_capacity_events", "gauge", "The queue's bound in events (queue.max_events)"
)
QUEUE_CAPACITY_BYTES = Metric(
    "queue_capacity_bytes", "gauge", "The queue's bound in bytes (queue.max_bytes)"
)

# Resume paused sources once the queue is below this fraction of its bounds:
# resuming at the high mark would pause and resume on every batch.
LOW_WATERMARK = 0.5


class BatchQueue:
    __slots__ = (
        "_batches",
        "_closed",
        "_nonempty",
        "_space_waiters",
        "events",
        "max_bytes",
        "max_events",
        "nbytes",
        "peak_bytes",
        "peak_events",
    )

    def __init__(self, max_events: int, max_bytes: int) -> None:
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.events = 0
        self.nbytes = 0
        self.peak_events = 0  # high-water marks, for STATS
        self.peak_bytes = 0
        self._batches: deque[Batch] = deque()
        self._nonempty = asyncio.Event()
        self._space_waiters: list[Callable[[], None]] = []
        self._closed = False

    def readings(self, out: Readings) -> None:
        out.add(QUEUE_EVENTS, self.events)
        out.add(QUEUE_BYTES, self.nbytes)
        out.add(QUEUE_PEAK_EVENTS, self.peak_events)
        out.add(QUEUE_PEAK_BYTES, self.peak_bytes)
        out.add(QUEUE_CAPACITY_EVENTS, self.max_events)
        out.add(QUEUE_CAPACITY_BYTES, self.max_bytes)

    @property
    def fill(self) -> float:
        """The fuller of the two bounds, as a fraction (it may pass 1 by one read)."""
        return max(self.events / self.max_events, self.nbytes / self.max_bytes)

    @property
    def closed(self) -> bool:
        """The drain began: nothing more may be put."""
        return self._closed

    @property
    def full(self) -> bool:
        return self.events >= self.max_events or self.nbytes >= self.max_bytes

    def put(self, batch: Batch) -> bool:
        """Append a batch; True when the queue is now full and the caller should pause."""
        self._batches.append(batch)
        self.events += len(batch)
        self.nbytes += batch.nbytes
        if self.nbytes > self.peak_bytes:
            self.peak_bytes = self.nbytes
        if self.events > self.peak_events:
            self.peak_events = self.events
        self._nonempty.set()
        return self.full

    def evict_oldest(
        self, events: int, nbytes: int, spared: Callable[[Batch], bool] | None = None
    ) -> list[Batch]:
        """Drop the oldest queued batches until `events`/`nbytes` more fit (drop_oldest).

        Only batches the worker has not taken yet, and none `spared` says to keep
        (they stay, in order); returns the batches evicted (their ids become gaps).
        """
        evicted: list[Batch] = []
        kept: list[Batch] = []
        ring = self._batches
        while ring and (
            self.events + events > self.max_events or self.nbytes + nbytes > self.max_bytes
        ):
            batch = ring.popleft()
            if spared is not None and spared(batch):
                kept.append(batch)
                continue
            self.events -= len(batch)
            self.nbytes -= batch.nbytes
            evicted.append(batch)
        ring.extendleft(reversed(kept))
        return evicted

    def on_space(self, callback: Callable[[], None]) -> None:
        """Call `callback` once, when the queue drains below its low watermark."""
        self._space_waiters.append(callback)

    async def get_all(self) -> list[Batch]:
        """Wait for batches and take all of them; [] once closed and empty."""
        while not self._batches:
            if self._closed:
                return []
            self._nonempty.clear()
            await self._nonempty.wait()
        batches = list(self._batches)
        self._batches.clear()
        return batches

    def done(self, batches: list[Batch]) -> None:
        """The consumer has delivered `batches`: their room is free again."""
        for batch in batches:
            self.events -= len(batch)
            self.nbytes -= batch.nbytes
        if (
            self._space_waiters
            and self.events < self.max_events * LOW_WATERMARK
            and self.nbytes < self.max_bytes * LOW_WATERMARK
        ):
            waiters, self._space_waiters = self._space_waiters, []
            for callback in waiters:
                callback()

    def close(self) -> None:
        """No more puts are expected; the consumer stops once the queue is empty."""
        self._closed = True
        self._nonempty.set()
