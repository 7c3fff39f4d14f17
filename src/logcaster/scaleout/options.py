"""Scale-out's options (SPEC §11, docs/scaleout.md): the `scaleout` section of the
server's config, and the writer's settings (`logcaster writer` flags).

The section is off while `publish` and `history` are null: the embedded server
is the default and touches no Redis and no PostgreSQL.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from logcaster.options import PositiveFloat, PositiveInt, Section

DEFAULT_STREAM = "logcaster:events"
PUBLISH_GROUP = "publish"  # the publisher's forward group: metrics, /readyz, its spool
StreamName = Annotated[str, msgspec.Meta(pattern=r"^[!-~]{1,200}$")]


class ScaleoutConfig(Section, frozen=True):
    """An ingest node publishing to Redis Streams, and a query node reading PostgreSQL."""

    # redis://[:password@]HOST:PORT/DB (rediss:// for TLS): every batch becomes one
    # stream entry; acknowledged clients are acked once Redis holds it.
    publish: str | None = None
    stream: StreamName = DEFAULT_STREAM
    # XADD … MAXLEN ~ max_len: the stream's bound in entries (one per batch). Set it
    # well above what the writers may lag by: a trimmed entry no writer read is lost.
    max_len: PositiveInt = 1_000_000
    # Batches sent to Redis and not yet confirmed; past it the pipeline waits.
    max_inflight: PositiveInt = 32
    batch_events: PositiveInt = 2000  # events per round trip to Redis
    buffer_events: PositiveInt = 20_000  # in memory; past it the pipeline waits
    write_timeout: PositiveFloat = 5.0  # seconds one XADD round trip may take
    # While Redis is down batches go to a disk spool (<persist.dir>/forward/publish),
    # drained in order when it is back; bounded by spool_max_bytes.
    spool_max_bytes: Annotated[int, msgspec.Meta(ge=1024 * 1024)] = 1024 * 1024 * 1024
    spool_policy: Literal["block", "drop_newest", "drop_oldest"] = "block"
    # Check Redis's persistence at start (CONFIG GET appendonly, appendfsync) and
    # warn when a restart would lose acknowledged batches.
    check_persistence: bool = True
    # postgresql://…: queries (the line protocol, HTTP, the dashboard) read the
    # writers' tables instead of this node's store.
    history: str | None = None
    history_connections: PositiveInt = 4  # PostgreSQL connections the queries share


class WriterConfig(msgspec.Struct, frozen=True, kw_only=True):
    """One writer (`logcaster writer`): Redis stream → PostgreSQL."""

    redis: str
    postgres: str
    stream: str = DEFAULT_STREAM
    group: str = "writers"
    consumer: str = ""  # empty: <hostname>-<pid>
    batch_entries: int = 64  # stream entries per read, written in one transaction
    block_ms: int = 1000  # XREADGROUP's wait for new entries
    claim_idle_ms: int = 30_000  # a dead consumer's entries idle this long are claimed
    max_deliveries: int = 5  # past it an entry goes to the dead-letter stream
    dead_stream: str = ""  # empty: <stream>:dead
    days_ahead: int = 2  # daily partitions made ahead
    retention_days: int = 0  # 0: keep every partition
    dedup_days: int = 2  # how long a session's line numbers are remembered
    metrics_port: int | None = None  # /metrics in Prometheus text; None: off
    metrics_host: str = "127.0.0.1"

    @property
    def dead(self) -> str:
        return self.dead_stream or f"{self.stream}:dead"
