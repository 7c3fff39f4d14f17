"""A writer's metrics, on its own `/metrics` (`logcaster writer --metrics-port`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class WriterMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        p = "logcaster_writer_"
        self.entries = Counter(p + "entries", "Stream entries written and acknowledged", registry=r)
        self.events = Counter(p + "events", "Events inserted into PostgreSQL", registry=r)
        self.duplicates = Counter(
            p + "duplicate_events",
            "Events already stored (a redelivered entry, a line a client resent)",
            registry=r,
        )
        self.dead_letters = Counter(
            p + "dead_letters", "Entries moved to the dead-letter stream", registry=r
        )
        self.claimed = Counter(
            p + "claimed_entries",
            "Entries taken over from an idle consumer (XAUTOCLAIM)",
            registry=r,
        )
        self.trimmed = Counter(
            p + "trimmed_entries",
            "Pending entries the stream's MAXLEN deleted before they were written (lost)",
            registry=r,
        )
        self.errors = Counter(
            p + "errors", "Failures, by kind (redis, postgres, entry)", ["kind"], registry=r
        )
        self.pending = Gauge(p + "pending_entries", "The group's pending entries", registry=r)
        self.lag = Gauge(
            p + "lag_entries",
            "Entries the group has not read yet (XINFO GROUPS lag): keep it below MAXLEN",
            registry=r,
        )
        self.commit = Histogram(
            p + "commit_seconds", "One transaction: COPY, INSERT, COMMIT", registry=r
        )
        self.queryable = Histogram(
            p + "queryable_seconds",
            "From the node's receipt of a batch to its commit in PostgreSQL",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )

    def serve(self, host: str, port: int) -> int:
        """Serve /metrics in a daemon thread; return the port bound (0 picks one)."""
        server, _ = start_http_server(port, host, registry=self.registry)
        return int(server.server_address[1])
