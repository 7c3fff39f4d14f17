"""Server-wide counters: one object, handed to every component that counts.

Counts here are the pipeline's, by listener (the source's name before its
first `:`: `tcp`, `syslog-tcp`, `syslog-udp`, `http`) and reason; every one is
added per batch (a read, a datagram flush, a request), never per event. Their
metrics are declared below, next to the counts (metrics/registry.py).
"""

from __future__ import annotations

import time

from logcaster.metrics.registry import Metric, Readings

RECEIVED = Metric(
    "events_received",
    "counter",
    "Events a listener received: accepted, dropped or sampled by the queue policy",
    ("listener",),
    stats="Total",
)
ACCEPTED = Metric(
    "events_accepted",
    "counter",
    "Events the queue policy admitted (they got ids)",
    ("listener",),
    stats="Accepted",
)
DROPPED = Metric(
    "events_dropped",
    "counter",
    "Events dropped before delivery, by listener and reason",
    ("listener", "reason"),
    stats="Dropped",
    stats_by=("reason", "Dropped"),
)
SAMPLED = Metric(
    "events_sampled",
    "counter",
    "Events sampling left out: stage queue (the sample policy) or tail (tail sampling)",
    ("listener", "stage"),
    stats="Sampled",
)
DELIVERED = Metric("events_delivered", "counter", "Events every sink has taken", stats="Delivered")
RECEIVED_BYTES = Metric(
    "received_bytes",
    "counter",
    "Bytes of event text received, by listener (framing removed)",
    ("listener",),
    stats="BytesReceived",
)
TRUNCATED = Metric(
    "truncated_lines",
    "counter",
    "Lines or messages cut at their size bound, by listener",
    ("listener",),
    stats="Truncated",
)
SINK_ERRORS = Metric(
    "sink_errors",
    "counter",
    "Failed writes to a local sink (the pipeline retries them)",
    ("sink",),
    stats="SinkErrors",
)
HIGH_WATERMARK = Metric(
    "queue_high_watermark_crossings",
    "counter",
    "Upward crossings of queue.high_watermark",
    stats="HighWatermark",
)
UPTIME = Metric("uptime_seconds", "gauge", "Seconds since the server started", stats="Uptime")


def listener_of(source: str) -> str:
    """The listener a batch came from: its source's name before the first `:`."""
    return source.partition(":")[0]


class Stats:
    """Counters read by STATS, /api/v1/stats and /metrics, and logged at shutdown.

    Every event is accounted for, once: `received` (STATS `Total`) = `delivered`
    + the events still in the queue (and held by tail sampling) + `dropped` (by
    reason, in `drops`) + `sampled`. A drop before delivery counts in `received`
    too, whatever its path (UDP included). What a forward group loses after it
    took an event (delivered) is counted by the group (STATS ForwardDropped).
    Per listener, `received` = `accepted` + dropped + sampled by the queue policy.
    """

    __slots__ = (
        "accepted_by",
        "bytes_by",
        "delivered",
        "drops_by",
        "high_watermark",
        "received_by",
        "sampled_by",
        "sink_errors_by",
        "started_at",
        "tail",
        "truncated_by",
    )

    def __init__(self) -> None:
        self.started_at = time.time()
        self.received_by: dict[str, int] = {}  # events offered to the pipeline, by listener
        self.accepted_by: dict[str, int] = {}  # of those, admitted (given ids)
        self.bytes_by: dict[str, int] = {}  # their text's bytes
        self.drops_by: dict[tuple[str, str], int] = {}  # (listener, reason)
        self.sampled_by: dict[tuple[str, str], int] = {}  # (listener, stage): never ERROR/FATAL
        self.delivered = 0  # events every sink has taken
        self.truncated_by: dict[str, int] = {}  # lines cut at max_line_bytes (or syslog's bound)
        self.sink_errors_by: dict[str, int] = {}  # failed local sink writes (each is retried)
        self.high_watermark = 0  # upward crossings of queue.high_watermark
        self.tail: dict[str, int] = {}  # tail sampling: events by decision

    # -- counting (per batch) ----------------------------------------------------

    def offered(self, listener: str, events: int, nbytes: int, accepted: int) -> None:
        """A listener offered `events` texts of `nbytes` bytes; `accepted` got ids."""
        _add(self.received_by, listener, events)
        _add(self.bytes_by, listener, nbytes)
        _add(self.accepted_by, listener, accepted)

    def drop(self, listener: str, reason: str, n: int = 1) -> None:
        key = (listener, reason)
        self.drops_by[key] = self.drops_by.get(key, 0) + n

    def sample(self, listener: str, stage: str, n: int) -> None:
        key = (listener, stage)
        self.sampled_by[key] = self.sampled_by.get(key, 0) + n

    def truncate(self, listener: str, n: int) -> None:
        _add(self.truncated_by, listener, n)

    def sink_error(self, sink: str) -> None:
        _add(self.sink_errors_by, sink, 1)

    # -- totals --------------------------------------------------------------------

    @property
    def received(self) -> int:
        return sum(self.received_by.values())

    @property
    def drops(self) -> dict[str, int]:
        """Dropped events by reason, every listener summed."""
        out: dict[str, int] = {}
        for (_, reason), n in self.drops_by.items():
            out[reason] = out.get(reason, 0) + n
        return out

    @property
    def dropped(self) -> int:
        return sum(self.drops_by.values())

    @property
    def sampled(self) -> int:
        return sum(self.sampled_by.values())

    @property
    def truncated(self) -> int:
        return sum(self.truncated_by.values())

    def readings(self, out: Readings) -> None:
        out.each(RECEIVED, self.received_by)
        out.pairs(DROPPED, self.drops_by)
        out.add(DELIVERED, self.delivered)
        out.pairs(SAMPLED, self.sampled_by)
        out.each(ACCEPTED, self.accepted_by)
        out.each(RECEIVED_BYTES, self.bytes_by)
        out.each(TRUNCATED, self.truncated_by)
        out.each(SINK_ERRORS, self.sink_errors_by)
        out.add(HIGH_WATERMARK, self.high_watermark)
        out.add(UPTIME, time.time() - self.started_at)


def _add(counts: dict[str, int], key: str, n: int) -> None:
    counts[key] = counts.get(key, 0) + n
