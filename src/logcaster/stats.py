"""Server-wide counters: one object, handed to every component that counts."""

from __future__ import annotations

import time


class Stats:
    """Counters read by STATS and logged at shutdown.

    Every event is accounted for, once: `received` (STATS `Total`) = `delivered`
    + the events still in the queue (and held by tail sampling) + `dropped` (by
    reason, in `drops`) + `sampled`. A drop before delivery counts in `received`
    too, whatever its path (UDP included). What a forward group loses after it
    took an event (delivered) is counted by the group (STATS ForwardDropped).
    """

    __slots__ = (
        "clients",
        "connections_refused",
        "delivered",
        "drops",
        "high_watermark",
        "idle_closed",
        "received",
        "sampled",
        "sink_errors",
        "started_at",
        "tail",
        "truncated",
    )

    def __init__(self) -> None:
        self.started_at = time.time()
        self.received = 0  # events accepted into the pipeline
        self.delivered = 0  # events every sink has taken
        self.truncated = 0  # lines cut at max_line_bytes
        self.clients = 0  # connected ingest clients (TCP lines and syslog over TCP)
        self.connections_refused: dict[str, int] = {}  # over a connection cap, by reason
        self.idle_closed = 0  # ingest connections closed after ingest.idle_timeout
        self.sink_errors = 0  # failed sink writes (each is retried)
        self.drops: dict[str, int] = {}
        self.sampled = 0  # events the sample policy left out (never ERROR/FATAL)
        self.high_watermark = 0  # upward crossings of queue.high_watermark
        self.tail: dict[str, int] = {}  # tail sampling: events by decision

    @property
    def dropped(self) -> int:
        return sum(self.drops.values())

    def drop(self, reason: str, n: int = 1) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + n
