"""The intake budget: how much ingest work one event-loop turn may do.

Under a flood, every readable connection delivers a read on every turn, and
libuv reads a socket up to 32 times per wake-up; framing, admission (the
`sample` policy's level extraction above all) and the queue all run inside
those callbacks. Unbounded, one turn could take seconds, and the query port,
served on the same loop, waited for the flood to end. So the processing time
per turn is capped, across all connections: a read that arrives once the
turn's budget is spent is kept aside, its connection stops reading, and it is
processed first on a following turn, in arrival order. Memory stays bounded by
one read per connection, as with `pause_reading` for a full queue; the
kernel's TCP window pushes back on the senders meanwhile.

The budget is time, not bytes: what a byte costs depends on the policy and the
lines (a `sample` flood costs several times a `block` one), and a byte budget
small enough for the costly case deferred nearly every read of a single fast
connection (a pause and a resume each: -15% lines/s on one connection with
256 KiB; bench/ingest, 2026-12-05). Per turn, 10 ms cost 7%, 25 ms 4% (within
the noise), unbounded 0%: fewer, longer turns amortise the worker's wake-ups.
Two clock reads per read (~0.1 us) against a read's ~1 ms of framing.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

# Work per turn: a query waits at most a few turns of this (well under 1 s).
TURN_SECONDS = 0.025


class IntakeBudget:
    __slots__ = ("_scheduled", "_waiting", "limit", "used")

    def __init__(self, limit: float = TURN_SECONDS) -> None:
        self.limit = limit
        self.used = 0.0  # seconds of processing in this turn
        self._waiting: deque[Callable[[], None]] = deque()
        self._scheduled = False

    def take(self) -> bool:
        """May a read be processed now? False when this turn's budget is spent (then
        `defer`). A read is taken while time is left and nobody waits before it,
        so one turn runs at most the budget plus one read."""
        return self.used < self.limit and not self._waiting

    def run(self, process: Callable[[bytes], None], data: bytes) -> None:
        """`process(data)`, its time counted against this turn."""
        started = time.perf_counter()
        try:
            process(data)
        finally:
            self.used += time.perf_counter() - started
            self._schedule()

    def defer(self, resume: Callable[[], None]) -> None:
        """Call `resume()` on a later turn, in arrival order; it processes what it kept
        aside (through `run`, against that turn's budget) and resumes reading."""
        self._waiting.append(resume)
        self._schedule()

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._next_turn)

    def _next_turn(self) -> None:
        self._scheduled = False
        self.used = 0.0
        waiting = self._waiting
        while waiting and self.used < self.limit:
            resume = waiting.popleft()
            resume()
        if waiting:
            self._schedule()
