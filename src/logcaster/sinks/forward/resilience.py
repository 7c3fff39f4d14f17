"""Retry timing and circuit breakers: the one place failure handling lives.

Sinks make one attempt and raise; the pipeline worker (local sinks) and the
forward groups (remote sinks) decide when to try again with these.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Literal


class Backoff:
    """Exponential backoff with jitter: each delay doubles up to `max_s`.

    The jitter (each delay drawn from [d/2, d]) spreads the retries of many
    senders that failed together, so a recovering receiver is not hit at once.
    """

    __slots__ = ("_delay", "_rng", "attempts", "first_s", "max_s")

    def __init__(
        self, first_s: float, max_s: float, rng: Callable[[], float] = random.random
    ) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self._rng = rng
        self._delay = first_s
        self.attempts = 0  # failures since the last reset

    def next(self) -> float:
        """The seconds to wait before the next attempt (call after each failure)."""
        self.attempts += 1
        delay = self._delay * (0.5 + 0.5 * self._rng())
        self._delay = min(self._delay * 2, self.max_s)
        return delay

    def reset(self) -> None:
        self._delay = self.first_s
        self.attempts = 0


BreakerState = Literal["closed", "open", "half_open"]
BREAKER_STATES: tuple[BreakerState, ...] = ("closed", "open", "half_open")


class Breaker:
    """A circuit breaker for one sink: closed, open, half-open.

    - closed: writes go through; `failure_threshold` failures in a row open it.
    - open: no writes for the open period (starting at `open_s`, doubling with
      each failed trial up to `max_open_s`, with jitter), so a dead sink costs
      nothing per batch and its traffic fails over at once.
    - half-open: after the period one trial is allowed (a health check, then a
      write); success closes it (failback), failure opens it again for longer.
    """

    __slots__ = (
        "_backoff",
        "_clock",
        "_failures",
        "_reopen_at",
        "closes",
        "failure_threshold",
        "opens",
        "state",
    )

    def __init__(
        self,
        failure_threshold: int = 3,
        open_s: float = 1.0,
        max_open_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.failure_threshold = failure_threshold
        self._backoff = Backoff(open_s, max_open_s, rng)
        self._clock = clock
        self.state: BreakerState = "closed"
        self._failures = 0
        self._reopen_at = 0.0
        self.opens = 0  # transitions to open, for STATS
        self.closes = 0  # recoveries (half-open -> closed)

    def allows(self) -> bool:
        """May a write be tried now? An open breaker past its period turns half-open."""
        if self.state == "open" and self._clock() >= self._reopen_at:
            self.state = "half_open"
        return self.state != "open"

    @property
    def retry_in(self) -> float:
        """Seconds until an open breaker allows a trial (0 when it allows now)."""
        if self.state != "open":
            return 0.0
        return max(0.0, self._reopen_at - self._clock())

    def success(self) -> bool:
        """Record a good write; True when this closed an open or half-open breaker."""
        self._failures = 0
        if self.state == "closed":
            return False
        self.state = "closed"
        self._backoff.reset()
        self.closes += 1
        return True

    def failure(self) -> bool:
        """Record a failed write; True when this opened the breaker."""
        self._failures += 1
        if self.state == "half_open" or (
            self.state == "closed" and self._failures >= self.failure_threshold
        ):
            self.state = "open"
            self._reopen_at = self._clock() + self._backoff.next()
            self.opens += 1
            return True
        return False
