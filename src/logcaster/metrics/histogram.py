"""A histogram whose observations carry a weight: one batch, many events.

prometheus_client's `Histogram` counts one observation per call; the
processing-duration histogram observes a whole batch at once (every event of
it waited the same time), so it needs `observe(seconds, events)`. This one
keeps plain bucket counts and is rendered as a `HistogramMetricFamily`
(metrics/prometheus.py). It is read and written on the event loop only.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

# Seconds: from a memory-only server (sub-millisecond) to a stalled disk or a
# forward group waiting for its receiver (a minute and more).
DURATION_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)


class Histogram:
    """Bucket counts (`le` upper bounds, +Inf implied), their sum and count."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: Sequence[float] = DURATION_BUCKETS) -> None:
        if list(bounds) != sorted(set(bounds)):
            raise ValueError("histogram bounds must be increasing")
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float, weight: int = 1) -> None:
        """`weight` observations of `value` (an `le` bound counts values up to it)."""
        self.counts[bisect.bisect_left(self.bounds, value)] += weight
        self.sum += value * weight
        self.count += weight

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, cumulative count) pairs, the last bound infinite: the buckets
        the exposition format shows."""
        out: list[tuple[float, int]] = []
        running = 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out
