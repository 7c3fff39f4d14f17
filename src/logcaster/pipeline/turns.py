"""The intake budget: how many ingest bytes one event-loop turn may process.

Under a flood, every readable connection delivers a read on every turn, and
libuv reads a socket up to 32 times per wake-up; framing, admission (the
`sample` policy's level extraction above all) and the queue all run inside
those callbacks. Unbounded, one turn could take seconds, and the query port,
served on the same loop, waited for the flood to end (issue 14, item 5). So
the bytes processed per turn are capped, across all connections: a read that
arrives once the turn's budget is spent is kept aside, its connection stops
reading, and it is processed first on a following turn, in arrival order.
Memory stays bounded by one read per connection, as with `pause_reading`
for a full queue; the kernel's TCP window pushes back on the senders meanwhile.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

# ~1-20 ms of framing and admission, so a query's few loop turns stay short.
TURN_BYTES = 256 * 1024


class IntakeBudget:
    __slots__ = ("_scheduled", "_waiting", "limit", "used")

    def __init__(self, limit: int = TURN_BYTES) -> None:
        self.limit = limit
        self.used = 0  # bytes processed in this turn
        self._waiting: deque[Callable[[], None]] = deque()
        self._scheduled = False

    def take(self, nbytes: int) -> bool:
        """Spend `nbytes` of this turn's budget; False when it is spent (then `defer`).

        A read is taken while anything is left and nobody waits before it, so
        one turn processes at most the budget plus one read.
        """
        if self.used >= self.limit or self._waiting:
            return False
        self.spend(nbytes)
        return True

    def spend(self, nbytes: int) -> None:
        """Count bytes processed in this turn (a deferred read, when its turn comes)."""
        self.used += nbytes
        self._schedule()

    def defer(self, resume: Callable[[], None]) -> None:
        """Call `resume()` on a later turn, in arrival order; it processes what it kept
        aside (taking from that turn's budget) and resumes reading."""
        self._waiting.append(resume)
        self._schedule()

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._next_turn)

    def _next_turn(self) -> None:
        self._scheduled = False
        self.used = 0
        waiting = self._waiting
        while waiting and self.used < self.limit:
            resume = waiting.popleft()
            resume()
        if waiting:
            self._schedule()
