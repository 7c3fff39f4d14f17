"""Every section of the configuration: its options, their types, defaults and bounds.

`config.py` assembles them into the one `Config` and loads it; each component
imports only the section it reads.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

REGEX_MAX_MEM = 8 << 20  # RE2's own default budget per compiled regex (query.regex_max_mem)

Port = Annotated[int, msgspec.Meta(ge=0, le=65535, description="TCP/UDP port; 0 picks a free one")]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
# The address a listener binds; loopback by default, so nothing is open to the
# network unless asked for, listener by listener.
Host = Annotated[str, msgspec.Meta(min_length=1, description="address to bind")]
LOOPBACK = "127.0.0.1"
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
LogLevel = Literal["debug", "info", "warning", "error"]

ENV_PREFIX = "LOGCASTER_"


class Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class IngestConfig(Section, frozen=True):
    """TCP line ingest (SPEC §2)."""

    host: Host = LOOPBACK
    port: Port = 9999
    max_line_bytes: Annotated[int, msgspec.Meta(ge=16)] = 64 * 1024
    # These apply to syslog over TCP as well, per listener (sources/connections.py).
    max_connections: PositiveInt = 10_000
    max_connections_per_ip: Annotated[int, msgspec.Meta(ge=0)] = 256  # 0: no cap
    # Seconds without data before a connection is closed; 0: never. Not while the
    # server holds it back (full queue) or owes it acks.
    idle_timeout: Annotated[float, msgspec.Meta(ge=0)] = 300.0


class SyslogConfig(Section, frozen=True):
    """Syslog listener on UDP and TCP (off while `port` is null)."""

    host: Host = LOOPBACK
    port: Port | None = None
    max_message_bytes: Annotated[int, msgspec.Meta(ge=480)] = 64 * 1024


class MultilineRule(Section, frozen=True):
    """An operator's grouping rule: RE2 patterns, matched at the start of a line."""

    name: Annotated[str, msgspec.Meta(min_length=1)]
    start: str  # a line it matches begins an event of this rule
    continue_: str = msgspec.field(name="continue")  # lines it matches continue that event
    listeners: list[Literal["ingest", "http"]] = []  # where it applies; empty: every line listener


class MultilineConfig(Section, frozen=True):
    """Grouping of stack traces and other continuation lines into one event (SPEC §3)."""

    enabled: bool = True
    idle_timeout: PositiveFloat = 1.0
    max_lines: PositiveInt = 1000
    max_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 1024 * 1024
    rules: list[MultilineRule] = []  # checked before the built-in trace rules


class QueueConfig(Section, frozen=True):
    """The bounded queue between sources and sinks (SPEC §4)."""

    max_events: PositiveInt = 200_000
    max_bytes: Annotated[int, msgspec.Meta(ge=64 * 1024)] = 64 * 1024 * 1024
    # What a full queue does: block (pause reading, lossless), drop_newest,
    # drop_oldest, reject, or sample (thin non-error events, then block).
    policy: Literal["block", "drop_newest", "drop_oldest", "reject", "sample"] = "block"
    # Fill (of either bound) that warns, and where `sample` starts thinning.
    high_watermark: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.8
    sample_max_n: Annotated[int, msgspec.Meta(ge=2)] = 100  # sample keeps 1 in N, N up to this


class TailSamplingConfig(Section, frozen=True):
    """Tail-aware sampling (SPEC §4): keep or drop whole requests; off by default."""

    enabled: bool = False
    window_s: PositiveFloat = 5.0  # a request is decided within this after its first event
    rate: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.05  # keep rate p of normal requests
    min_rate: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.01  # p's floor under pressure
    slow_ms: PositiveFloat = 2000.0  # SLOW_REQUEST: duration_ms above this keeps the request
    # CRITICAL_ROUTE: a route containing one of these keeps the request (e.g. /payments).
    critical_routes: list[str] = msgspec.field(default_factory=list)
    max_pending_events: PositiveInt = 200_000  # held at most; past it released early


class MemoryConfig(Section, frozen=True):
    """The in-memory ring buffer of recent events."""

    capacity: PositiveInt = 10_000


class PersistConfig(Section, frozen=True):
    """The file sink (SPEC §5): checksummed segment files, replayed at start.

    Off while `dir` is null."""

    dir: str | None = None
    max_file_bytes: Annotated[int, msgspec.Meta(ge=4096)] = 100 * 1024 * 1024
    fsync: Literal["always", "interval", "never"] = "interval"
    fsync_interval_ms: PositiveInt = 200
    format: Literal["raw", "json"] = "raw"
    # Time rotation at UTC-aligned boundaries; null rotates by size only.
    rotate_interval: Literal["hourly", "daily"] | PositiveInt | None = None
    compress: bool = True  # gzip rotated segments in the background
    # Retention of rotated segments (never active.log or quarantine/); null keeps all.
    retention_files: PositiveInt | None = None
    retention_age: PositiveFloat | None = None  # seconds since the file was rotated
    retention_bytes: PositiveInt | None = None  # total bytes of rotated files on disk


class QueryConfig(Section, frozen=True):
    """The TCP line query protocol (SPEC §6)."""

    # No authentication yet: off loopback, anyone who can connect can CLEAR.
    host: Host = LOOPBACK
    port: Port = 9998
    default_limit: PositiveInt = 100
    max_limit: PositiveInt = 10_000
    timeout: PositiveFloat = 5.0
    max_scan: PositiveInt = 10_000_000
    # FOUND is exact up to this many matches, then "N+"; a query can ask max_count=N.
    # Counting a text match is scanning for it: a low default keeps "the newest
    # rows" cheap on a large history (docs/store-design.md, "FOUND cap").
    max_count: PositiveInt = 100
    max_concurrent: PositiveInt = 2  # queries running at once; more wait
    max_waiting: Annotated[int, msgspec.Meta(ge=0)] = 32  # past this: "ERROR: busy"
    # What one query's text tests may cost, checked before compiling (query/limits.py).
    max_pattern_bytes: PositiveInt = 4096  # a regex's size
    max_pattern_depth: PositiveInt = 32  # groups nested in a regex
    regex_max_mem: Annotated[int, msgspec.Meta(ge=65536, le=1 << 30)] = REGEX_MAX_MEM  # RE2 budget
    regex_max_program: PositiveInt = 5000  # RE2 instructions: a search costs up to this x text
    max_keyword_bytes: PositiveInt = 1024  # one keyword's size
    max_keywords: PositiveInt = 64  # keywords in one query


class StoreConfig(Section, frozen=True):
    """The embedded store (SPEC §5): an index over the file sink's segments.

    `auto` turns it on when persist.dir is set and persist.format is raw."""

    enabled: Literal["auto"] | bool = "auto"
    threads: PositiveInt = 2  # scan threads per query
    # Events not yet indexed are kept in memory beyond memory.capacity, up to this many.
    max_unindexed: Annotated[int, msgspec.Meta(ge=0)] = 200_000
    # A durable event waits at most about this long for the index, even while its
    # chunk of active.log is not full (the partial chunk is indexed, then extended).
    index_delay_ms: PositiveInt = 1000


class ForwardSinkConfig(Section, frozen=True):
    """One destination of a forward group (sinks/forward/transports.py)."""

    url: str  # tcp://HOST:PORT, tcp://HOST:PORT?ack=1 (another LogCaster), http(s)://... (NDJSON)
    name: str | None = None  # in logs; the URL when null
    write_timeout: PositiveFloat = 5.0  # seconds one attempt may take (connect, send, acks)
    health_url: str | None = None  # HTTP: GET answering 2xx = healthy; else a TCP connect


class ForwardGroupConfig(Section, frozen=True):
    """A sink group (SPEC §5): copies of every event to other collectors, with failover."""

    name: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    primaries: Annotated[list[ForwardSinkConfig], msgspec.Meta(min_length=1)]
    backups: list[ForwardSinkConfig] = msgspec.field(default_factory=list)
    min_success: PositiveInt = 1  # sinks that must take an event for it to count as delivered
    batch_events: PositiveInt = 2000  # events per send
    # Sends out before the oldest is confirmed. An acknowledging receiver confirms
    # after its fsync (200 ms by default): the window caps the rate at
    # batch_events * max_in_flight per fsync interval (docs/forwarding.md).
    max_in_flight: PositiveInt = 32
    buffer_events: PositiveInt = 20_000  # in memory; past it the pipeline waits (backpressure)
    failure_threshold: PositiveInt = 3  # failures in a row that open a sink's breaker
    open_s: PositiveFloat = 1.0  # an open breaker's first pause before a trial (doubles)
    max_open_s: PositiveFloat = 30.0
    # Spool and dead letters live here; null: <persist.dir>/forward/<name>, or none
    # without persist.dir (then a group with no sink up holds events in memory and blocks).
    dir: str | None = None
    spool_max_bytes: Annotated[int, msgspec.Meta(ge=1024 * 1024)] = 1024 * 1024 * 1024
    spool_policy: Literal["block", "drop_newest", "drop_oldest"] = "block"  # a full spool
    spool_fsync: Literal["always", "interval", "never"] = "interval"
    dead_letter_max_bytes: Annotated[int, msgspec.Meta(ge=4096)] = 100 * 1024 * 1024


class HttpConfig(Section, frozen=True):
    """The HTTP front end (SPEC §2, §6, §8): ingest, query, live tail, stats, metrics,
    health. Every size, time and count it takes from a client is bounded here."""

    enabled: bool = True
    host: Host = LOOPBACK
    port: Port = 8080
    # A request body, and the same bound again after gzip decoding (a bomb gets 413).
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 10 * 1024 * 1024
    # Request bodies held in memory at once (read and decoded); past it requests
    # wait, then get 503. One body alone may always be read.
    max_inflight_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 64 * 1024 * 1024
    max_header_bytes: Annotated[int, msgspec.Meta(ge=1024, le=1 << 20)] = 8190  # a line or field
    max_headers: Annotated[int, msgspec.Meta(ge=8, le=1000)] = 100
    # Seconds a request may take: reading its body, waiting for queue room (block)
    # and for durability (?ack=1). Live-tail streams are not bounded by it.
    request_timeout: PositiveFloat = 30.0
    max_connections: PositiveInt = 1024  # open at once; past it a new one is closed at once
    keepalive_timeout: PositiveFloat = 75.0  # an idle keep-alive connection closes after this
    # Live tail (SSE): subscribers at once, events queued per subscriber before it
    # skips (a slow reader never slows ingest), and the heartbeat that keeps
    # proxies from closing an idle stream.
    tail_max_subscribers: PositiveInt = 256
    tail_queue_events: Annotated[int, msgspec.Meta(ge=100)] = 10_000
    tail_heartbeat_s: PositiveFloat = 15.0


class MetricsConfig(Section, frozen=True):
    """Prometheus metrics (SPEC §8): label bounds and the level/service tally."""

    # Distinct `service` label values; later services are counted as "other".
    max_services: PositiveInt = 100


class RedactRule(Section, frozen=True):
    """An operator's redaction rule (security/redact_rules.py): each match of an RE2
    pattern is replaced, by default with the marker naming the rule."""

    name: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    pattern: Annotated[str, msgspec.Meta(min_length=1)]  # at most 1024 bytes
    # Literal text, \1..\9 for groups; no quotes (JSON lines stay JSON). Null: the marker.
    replacement: str | None = None


class RedactConfig(Section, frozen=True):
    """Redaction before storage (SPEC §9, docs/redaction.md): secrets in event texts
    are replaced before the events get ids; off by default."""

    enabled: bool = False
    builtins: list[Literal["card", "password", "bearer", "aws_key", "email"]] = msgspec.field(
        default_factory=lambda: ["card", "password", "bearer", "aws_key"]
    )
    rules: Annotated[list[RedactRule], msgspec.Meta(max_length=32)] = []  # after the built-ins
    marker: str = "[REDACTED:{rule}]"  # {rule}: the rule's name
