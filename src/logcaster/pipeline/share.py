"""The live subscribers' share of the event loop (pipeline/broker.py).

Subscribers parse, filter and render on the loop that also reads ingest,
answers queries and serves HTTP. Their work (what they report with `spend`)
draws on a token bucket, at most `BURST_S` ahead, refilled at a rate that
follows the server's CPU use over each `WINDOW_S` (process CPU time over wall
time): while the server was saturated the rate halves, down to `SHARE`;
while it was not, the idle fraction is added, up to a whole core. So on a
quiet or moderately busy server the tails take the idle time (they catch
up, or replay memory, at the loop's speed), and under a flood that wants the
whole core, ingest keeps at least 1 - SHARE of it within a few windows. A
subscriber that finds the bucket empty sleeps until it is refilled, and
every step yields to the loop once, so other tasks run between subscribers'
steps whatever the bucket says.

Saturation is the only signal: "the rest's demand" cannot be measured while
the tails hold part of the CPU (any split of a saturated core looks the
same), so the rate backs off whenever the core is full and grows back into
idle time.

Why not a time per loop turn (as `IntakeBudget` does for TCP ingest): a
turn's length depends on what else runs. Under a TCP flood a turn holds up to
25 ms of reads, but an HTTP request is read a chunk per turn, and 10 ms per
turn for the tails took 75% of the loop from HTTP ingest (bench/http
--fanout: 740k events/s with no tail, 182k with 10). And why not a fixed
share: at 25% of a core, 100 `level=ERROR` tails at 10,000 events/s skipped a
quarter of their events on an otherwise idle server.

The process's CPU time counts threads too (the file sink's writes, query
threads) and the subscribers' work they do not report (socket writes, wake
ups): both can only make the server look busier, the cautious side.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

SHARE = 0.1  # the least the subscribers get, of a core, when the rest wants it all
BURST_S = 0.05  # how far ahead the bucket may fill
WINDOW_S = 0.1  # the span the server's CPU use is measured over
SATURATED = 0.9  # CPU seconds per second from which the server counts as saturated


class LoopShare:
    __slots__ = (
        "_clock",
        "_cpu",
        "_rate",
        "_stamp",
        "_tokens",
        "_window",
        "burst",
        "share",
    )

    def __init__(
        self,
        share: float = SHARE,
        burst: float = BURST_S,
        clock: Callable[[], float] = time.monotonic,
        cpu: Callable[[], float] = time.process_time,
    ) -> None:
        self.share = share
        self.burst = burst
        self._clock = clock
        self._cpu = cpu
        self._tokens = burst
        self._stamp = clock()
        self._rate = 1.0  # seconds of work per second the subscribers may do now
        self._window = (self._stamp, cpu())  # its start: wall time, process CPU time

    @property
    def rate(self) -> float:
        return self._rate

    def _refill(self, now: float) -> None:
        start, start_cpu = self._window
        span = now - start
        if span >= WINDOW_S:
            cpu = self._cpu()
            busy = (cpu - start_cpu) / span
            if busy >= SATURATED:
                self._rate = max(self.share, self._rate / 2)
            else:
                self._rate = min(1.0, self._rate + 1.0 - busy)
            self._window = (now, cpu)
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now

    def spend(self, seconds: float) -> None:
        """Subscribers' work done just now."""
        self._refill(self._clock())
        self._tokens -= seconds

    def delay(self) -> float:
        """Seconds a step must wait now: 0 while the bucket holds time, else
        until it is refilled to 0."""
        self._refill(self._clock())
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate

    async def wait(self) -> None:
        """Before a step: yield to the loop once, then wait out `delay`."""
        await asyncio.sleep(0)
        while (wait := self.delay()) > 0:  # noqa: ASYNC110 - refilled by time, not signalled
            await asyncio.sleep(wait)
