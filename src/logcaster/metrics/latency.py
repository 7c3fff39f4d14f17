"""Processing time, receive to durable: a histogram observed per batch.

A batch's events were received together (`Batch.received_at`) and become
durable together, when the pipeline's durable watermark passes the batch's
last id (every sink holds it: fsynced on disk with the file sink, taken by
`min_success` receivers or spooled by a forward group). So the pipeline
records each batch it delivered (its last id, receive time and event count)
and, each time the watermark moves, observes the batches it passed, weighted
by their event count: the histogram counts events, at the cost of one entry
per batch.

The record is bounded (`MAX_PENDING` entries): while the watermark stalls
(a slow disk, a forward group without a receiver and without a spool) newer
batches merge into the newest entry, which keeps their summed receive times;
they are observed at their mean receive time. So the count stays exact and
the times turn approximate only past 4,096 waiting batches.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence

from logcaster.metrics.histogram import Histogram
from logcaster.metrics.registry import Metric, Readings
from logcaster.pipeline.batch import Batch

MAX_PENDING = 4096

PROCESSING = Metric(
    "logging_processing_duration_seconds",
    "histogram",
    "Seconds from receiving an event to its being durable in every sink, per event",
)


class DurableLatency:
    """See the module docstring. Runs on the event loop (the pipeline's worker)."""

    __slots__ = ("_clock", "_pending", "histogram")

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.histogram = Histogram()
        self._clock = clock  # the clock of Batch.received_at
        # [last id, sum of receive time x events, events], oldest first
        self._pending: deque[list[float]] = deque()

    def delivered(self, batches: Sequence[Batch]) -> None:
        pending = self._pending
        for batch in batches:
            n = len(batch)
            if not n:
                continue
            if len(pending) < MAX_PENDING:
                pending.append([batch.last_id, batch.received_at * n, n])
            else:
                newest = pending[-1]
                newest[0] = batch.last_id
                newest[1] += batch.received_at * n
                newest[2] += n

    def durable(self, durable_id: int) -> None:
        """The watermark moved (a `Pipeline.on_durable` listener)."""
        pending = self._pending
        if not pending or pending[0][0] > durable_id:
            return
        now = self._clock()
        observe = self.histogram.observe
        while pending and pending[0][0] <= durable_id:
            _, received_sum, n = pending.popleft()
            # A clock stepped back must not make a negative duration.
            observe(max(0.0, now - received_sum / n), int(n))

    @property
    def waiting(self) -> int:
        """Delivered batches (or merged runs) not durable yet."""
        return len(self._pending)

    def readings(self, out: Readings) -> None:
        out.histogram(PROCESSING, self.histogram)
