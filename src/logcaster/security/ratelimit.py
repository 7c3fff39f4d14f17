"""Per-client rate limits: token buckets with a burst, one set per client.

A client is its source address and, when it presented one, its token's name:
two applications behind one NAT address with their own tokens are two
clients; one token used from many addresses is limited per address. A bucket
refills at `rate` per second up to `burst`; taking more than it holds leaves
it in debt and returns how long the client must wait until the debt is paid
(ingest takes what it read, then waits: TCP stops reading for that long, so
the kernel's window pushes back on that client alone). Clients are kept in an
LRU table of `rate_limit.max_clients`; a forgotten client starts with a full
bucket again, which is a burst, never a leak.

The failure limiter counts failed authentications per address the same way:
past `auth.max_failures` in `auth.failure_window_s` the next attempts are
refused without checking, until the window has passed.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from logcaster.metrics.registry import Metric, Readings
from logcaster.options import AuthConfig, RateLimitConfig

LIMITED = Metric(
    "rate_limited",
    "counter",
    "Requests or reads held back or refused by a per-client rate limit, by listener and kind",
    ("listener", "kind"),
    stats="RateLimited",
)
AUTH_FAILURES = Metric(
    "auth_failures",
    "counter",
    "Failed authentications, by listener and reason",
    ("listener", "reason"),
    stats="AuthFailures",
)

Client = tuple[str, str]  # (address, token name or "")


class Bucket:
    __slots__ = ("burst", "level", "rate", "stamp")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.level = burst
        self.stamp = now

    def take(self, n: float, now: float) -> float:
        """Take `n` (going into debt if need be); seconds to wait until the debt is paid."""
        self.level = min(self.burst, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        self.level -= n
        return 0.0 if self.level >= 0 else -self.level / self.rate

    def wait(self, now: float) -> float:
        """Seconds until the bucket holds one again, without taking."""
        level = min(self.burst, self.level + (now - self.stamp) * self.rate)
        return 0.0 if level >= 1 else (1 - level) / self.rate


def _burst(rate: float, burst: float) -> float:
    return burst if burst > 0 else max(rate, 1.0)


class _Buckets:
    """One kind of limit for every client, in an LRU table."""

    def __init__(self, rate: float, burst: float, max_clients: int) -> None:
        self.rate = rate
        self.burst = _burst(rate, burst)
        self._max = max_clients
        self._table: OrderedDict[Client, Bucket] = OrderedDict()

    def get(self, client: Client, now: float) -> Bucket:
        bucket = self._table.get(client)
        if bucket is None:
            bucket = self._table[client] = Bucket(self.rate, self.burst, now)
            if len(self._table) > self._max:
                self._table.popitem(last=False)
        else:
            self._table.move_to_end(client)
        return bucket


class RateLimits:
    """Every per-client limit of the server (shared by its listeners)."""

    def __init__(self, config: RateLimitConfig) -> None:
        n = config.max_clients
        self._events = _Buckets(config.events_per_s, config.events_burst, n)
        self._bytes = _Buckets(config.bytes_per_s, config.bytes_burst, n)
        self._queries = _Buckets(config.queries_per_s, config.queries_burst, n)
        self.ingest_on = config.events_per_s > 0 or config.bytes_per_s > 0
        self.queries_on = config.queries_per_s > 0
        self.limited: dict[tuple[str, str], int] = {}  # (listener, kind) -> count

    def ingest(self, client: Client, events: int, nbytes: int, listener: str) -> float:
        """Count a read of `events` events and `nbytes` bytes; seconds to hold the
        client back (0: none)."""
        if not self.ingest_on:
            return 0.0
        now = time.monotonic()
        wait = 0.0
        if self._events.rate > 0:
            wait = self._events.get(client, now).take(events, now)
        if self._bytes.rate > 0:
            wait = max(wait, self._bytes.get(client, now).take(nbytes, now))
        if wait > 0:
            self.count(listener, "ingest")
        return wait

    def ingest_wait(self, client: Client) -> float:
        """Seconds before a client in debt may send again (HTTP answers 429 until then)."""
        if not self.ingest_on:
            return 0.0
        now = time.monotonic()
        wait = 0.0
        for buckets in (self._events, self._bytes):
            if buckets.rate > 0:
                wait = max(wait, buckets.get(client, now).wait(now))
        return wait

    def query(self, client: Client, listener: str) -> float:
        """Take one query; seconds to wait when over the limit (then it is refused)."""
        if not self.queries_on:
            return 0.0
        now = time.monotonic()
        bucket = self._queries.get(client, now)
        if bucket.wait(now) > 0:
            self.count(listener, "query")
            return bucket.wait(now)
        bucket.take(1, now)
        return 0.0

    def count(self, listener: str, kind: str) -> None:
        key = (listener, kind)
        self.limited[key] = self.limited.get(key, 0) + 1

    def readings(self, out: Readings) -> None:
        for (listener, kind), n in sorted(self.limited.items()):
            out.add(LIMITED, n, listener, kind)


class FailureLimiter:
    """Failed authentications per address: past the limit, refused unchecked."""

    def __init__(self, config: AuthConfig) -> None:
        rate = config.max_failures / config.failure_window_s
        self._buckets = _Buckets(rate, float(config.max_failures), 10_000)
        self.failures: dict[tuple[str, str], int] = {}  # (listener, reason) -> count

    def locked(self, address: str) -> bool:
        now = time.monotonic()
        return self._buckets.get((address, ""), now).wait(now) > 0

    def failed(self, address: str, listener: str, reason: str) -> None:
        """A failed attempt: counted, and toward the address' lockout."""
        now = time.monotonic()
        self._buckets.get((address, ""), now).take(1, now)
        self.count(listener, reason)

    def count(self, listener: str, reason: str) -> None:
        """A refusal counted only (no attempt was checked: locked out, forged source)."""
        key = (listener, reason)
        self.failures[key] = self.failures.get(key, 0) + 1

    def readings(self, out: Readings) -> None:
        for (listener, reason), n in sorted(self.failures.items()):
            out.add(AUTH_FAILURES, n, listener, reason)
