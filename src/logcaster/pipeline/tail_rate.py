"""A live subscriber's own rate cap (`GET /api/v1/tail?max_rate=N`): at most N
matching events a second reach it; the others are told as skipped, reason
`rate` (pipeline/broker.py turns the refusals into `Skipped` notices).

A person reads a few hundred lines a second at most; a dashboard sent a million
draws none of them better, and the server would parse, render and write each
for nothing. So the cap applies where the subscription reads its queue: for a
subscriber that takes every event, *before* parsing (a step past the budget is
counted, never parsed); for a filtered one, after its filter (the filter needs
the parsed events; the cap then spares the rendering and writing). A token
bucket: up to a quarter second's worth saved, then N a second.

For readers of everything the broker spends one bucket per rate as each list
is delivered, and tells each such reader how many of the list's first events
it keeps: five dashboards on the same cap keep the same events, so the server
parses and renders them once, not five times. A replay (`since=`, `backlog=`)
spends the reader's own bucket.
"""

from __future__ import annotations

import time

MAX_RATE = 1_000_000  # events/s: a bound on the parameter, not a useful setting
# What a bucket saves while quiet, in seconds of its rate: a surge after a quiet
# spell starts with this much at once, then goes at the rate.
BURST_S = 0.25


class RateCap:
    """One subscriber's bucket."""

    __slots__ = ("_full", "_last", "_rate", "_tokens")

    def __init__(self, rate: int) -> None:
        self._rate = float(rate)
        self._full = max(1.0, rate * BURST_S)
        self._tokens = self._full
        self._last = time.monotonic()

    @property
    def rate(self) -> int:
        return int(self._rate)

    def take(self, wanted: int) -> int:
        """How many of `wanted` events may go now (all, some or none), taken."""
        now = time.monotonic()
        self._tokens = min(self._full, self._tokens + (now - self._last) * self._rate)
        self._last = now
        granted = min(wanted, int(self._tokens))
        self._tokens -= granted
        return granted
