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


ClientAuth = Literal["none", "optional", "required"]
TlsVersion = Literal["1.2", "1.3"]


class TlsConfig(Section, frozen=True):
    """TLS for every listener (security/tls.py, docs/tls.md); each listener's `tls`
    section overrides any of these for it alone."""

    enabled: bool = False
    cert_file: str | None = None  # PEM: the server's certificate (then its chain)
    key_file: str | None = None  # PEM: its private key, unencrypted
    ca_file: str | None = None  # PEM: the CAs client certificates are checked against
    # none: no client certificate asked; optional: checked when sent; required: no
    # connection without a valid one.
    client_auth: ClientAuth = "none"
    min_version: TlsVersion = "1.2"


class TlsOverride(Section, frozen=True):
    """A listener's own TLS settings: each null option inherits the global `tls` one."""

    enabled: bool | None = None
    cert_file: str | None = None
    key_file: str | None = None
    ca_file: str | None = None
    client_auth: ClientAuth | None = None
    min_version: TlsVersion | None = None


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
    # Seconds from a line's (or syslog message's) first byte to its end; past it
    # the connection is closed: a client trickling bytes without ever ending a
    # line is never idle, and would hold its slot (slowloris). 0: never.
    line_timeout: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    tls: TlsOverride = msgspec.field(default_factory=TlsOverride)


class SyslogConfig(Section, frozen=True):
    """Syslog listener on UDP and TCP (off while `port` is null)."""

    host: Host = LOOPBACK
    port: Port | None = None
    max_message_bytes: Annotated[int, msgspec.Meta(ge=480)] = 64 * 1024
    # The UDP socket's kernel receive buffer (SO_RCVBUF): datagrams that arrive
    # while the loop is busy wait there, and past it the kernel drops them
    # unseen. The kernel caps it at net.core.rmem_max (a warning says so).
    udp_receive_buffer: Annotated[int, msgspec.Meta(ge=4096, le=1 << 30)] = 4 << 20
    tls: TlsOverride = msgspec.field(default_factory=TlsOverride)  # TCP only; UDP stays plain


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

    # 50,000 events (~9 MB at a 140-byte line, docs/memory.md): ~40 ms at a full
    # load (1.1-1.5M lines/s here), enough to keep the sinks busy: 100,000 (and
    # 200,000 before it) added ~10 (~37) MB at peak and no throughput. rsyslog's
    # main queue holds 50,000 messages by default.
    max_events: PositiveInt = 50_000
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
    # Connections open at once, and from one address (0: no per-address cap);
    # past either a new one reads `ERROR: too many connections` and is closed.
    max_connections: PositiveInt = 512
    max_connections_per_ip: Annotated[int, msgspec.Meta(ge=0)] = 64
    max_waiting: Annotated[int, msgspec.Meta(ge=0)] = 32  # past this: "ERROR: busy"
    # What one query's text tests may cost, checked before compiling (query/limits.py).
    max_pattern_bytes: PositiveInt = 4096  # a regex's size
    max_pattern_depth: PositiveInt = 32  # groups nested in a regex
    regex_max_mem: Annotated[int, msgspec.Meta(ge=65536, le=1 << 30)] = REGEX_MAX_MEM  # RE2 budget
    regex_max_program: PositiveInt = 5000  # RE2 instructions: a search costs up to this x text
    max_keyword_bytes: PositiveInt = 1024  # one keyword's size
    max_keywords: PositiveInt = 64  # keywords in one query
    tls: TlsOverride = msgspec.field(default_factory=TlsOverride)


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
    # Hyperscan's matches collected in C where store/_hsreports.c is built (make
    # builds it with gcc and libhyperscan-dev); false: python-hyperscan's callbacks.
    c_collector: bool = True


class ForwardSinkConfig(Section, frozen=True):
    """One destination of a forward group (sinks/forward/transports.py)."""

    # tcp://HOST:PORT, tcp://HOST:PORT?ack=1 (another LogCaster), tls://HOST:PORT[?ack=1]
    # (the same over TLS), http(s)://... (NDJSON)
    url: str
    name: str | None = None  # in logs; the URL when null
    write_timeout: PositiveFloat = 5.0  # seconds one attempt may take (connect, send, acks)
    health_url: str | None = None  # HTTP: GET answering 2xx = healthy; else a TCP connect
    # tls:// and https:// targets: the server's certificate is checked against ca_file
    # (null: the system's CAs) unless verify is false; cert_file and key_file are our
    # client certificate, for a receiver that asks for one (mTLS).
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    # For a receiver with authentication on (another LogCaster): an ingest token,
    # sent as the AUTH line (tcp://, tls://) or `Authorization: Bearer` (http(s)://).
    token: str | None = None
    verify: bool = True


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
    # Every HTTP ingest request (the shippers' protocols too) is answered only once
    # its events are durable, as with ?ack=1: a shipper's 2xx then means stored.
    # Off by default: the answer comes when the events are queued.
    ack_compat: bool = False
    max_connections: PositiveInt = 1024  # open at once; past it a new one is closed at once
    # From one address; past it its new connections get a 503 at once. 0: no cap.
    max_connections_per_ip: Annotated[int, msgspec.Meta(ge=0)] = 256
    keepalive_timeout: PositiveFloat = 75.0  # an idle keep-alive connection closes after this
    # Seconds a request's line and headers may take, from the connection's start
    # or the request's first byte; past it the connection gets 408 and is closed
    # (slowloris). The body is bounded by min_body_rate and request_timeout.
    header_timeout: PositiveFloat = 10.0
    # Bytes per second a request body must average, after a grace of header_timeout
    # seconds; slower, it gets 408 and the connection is closed. 0: only request_timeout.
    min_body_rate: Annotated[int, msgspec.Meta(ge=0)] = 1024
    # Live tail (SSE): subscribers at once, events queued per subscriber before it
    # skips (a slow reader never slows ingest), and the heartbeat that keeps
    # proxies from closing an idle stream.
    tail_max_subscribers: PositiveInt = 256
    tail_queue_events: Annotated[int, msgspec.Meta(ge=100)] = 10_000
    tail_heartbeat_s: PositiveFloat = 15.0
    tls: TlsOverride = msgspec.field(default_factory=TlsOverride)


class OtlpConfig(Section, frozen=True):
    """OTLP/HTTP logs' own listener (frontends/http/otlp.py): `POST /v1/logs` only,
    on the port OpenTelemetry SDKs send to by default. The route is on the HTTP
    server (`http.port`) too; this listener takes its bounds from `http`."""

    enabled: bool = False
    host: Host = LOOPBACK
    port: Port = 4318
    tls: TlsOverride = msgspec.field(default_factory=TlsOverride)


class IrcConfig(Section, frozen=True):
    """The IRC server (SPEC §7, frontends/irc/, docs/irc.md): live log channels
    and LogBot's commands for real IRC clients. Off unless enabled (`-i`,
    `-I PORT`)."""

    enabled: bool = False
    host: Host = LOOPBACK
    port: Port = 6667  # 6697 is the usual port for TLS (irc.tls or the shared tls)
    tls: TlsOverride = msgspec.field(default_factory=TlsOverride)
    server_name: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$")] = (
        "logcaster"
    )
    network: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,32}$")] = "LogCaster"
    motd: list[Annotated[str, msgspec.Meta(max_length=400, pattern=r"^[^\x00-\x1f]*$")]] = (
        msgspec.field(
            default_factory=lambda: [
                "LogCaster: live logs in #logs-all, #logs-error, #logs-warning, #logs-info",
                "and #logs-debug. Say !help in a channel for LogBot's commands.",
            ]
        )
    )
    colors: bool = True  # the level in mIRC colour codes
    # Events a second a log channel streams at most (the rest is counted as skipped).
    channel_rate: PositiveFloat = 10.0
    # Lines a second the server sends each client, and a burst: enough for a few
    # busy channels, within what clients and slow links keep up with.
    rate: PositiveFloat = 50.0
    burst: PositiveInt = 100
    sendq_lines: Annotated[int, msgspec.Meta(ge=10)] = 500  # log lines queued per client
    # Protocol replies queued for a client that does not read; past it, it is cut.
    max_replies: Annotated[int, msgspec.Meta(ge=100)] = 5000
    stuck_timeout: PositiveFloat = 60.0  # a client that reads nothing this long is cut
    ping_interval: PositiveFloat = 90.0  # an idle client is pinged after this
    ping_timeout: PositiveFloat = 60.0  # and cut when no answer comes within this
    register_timeout: PositiveFloat = 30.0  # to finish NICK/USER (and CAP END)
    max_clients: PositiveInt = 500
    max_clients_per_ip: Annotated[int, msgspec.Meta(ge=0)] = 50  # 0: no per-address cap
    max_channels: PositiveInt = 200  # channels on the server, the log channels included
    max_joined: PositiveInt = 30  # channels one client may be in
    # LogBot's commands a client may give a second, and at once: an answer goes to
    # the whole channel, so one member must not make it flood the others.
    commands_per_s: PositiveFloat = 1.0
    commands_burst: PositiveInt = 5
    query_rows: PositiveInt = 5  # rows `!query` shows in a channel; more with limit= (up to 50)
    show_lines: PositiveInt = 200  # `!show` prints at most this many lines of a body


VERSION_PATTERN = r"^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$"


class ElasticConfig(Section, frozen=True):
    """Elasticsearch's `_bulk` API on the HTTP server (frontends/http/elastic.py,
    docs/shippers.md): the version `GET /` reports. Beats refuse a server older
    than themselves, and clients pick their protocol by its major version."""

    version: Annotated[str, msgspec.Meta(pattern=VERSION_PATTERN)] = "8.17.0"


class MetricsConfig(Section, frozen=True):
    """Prometheus metrics (SPEC §8): label bounds and the level/service tally."""

    # Distinct `service` label values; later services are counted as "other".
    max_services: PositiveInt = 100


RoleName = Literal["ingest", "viewer", "operator", "admin"]  # security/roles.py


class CertificateRole(Section, frozen=True):
    """A client certificate's subject mapped to a role (mTLS: syslog, any listener)."""

    # The certificate's whole subject as RFC 4514 ("CN=app1,O=Example"), or "CN=app1"
    # alone to match the common name whatever else the subject holds.
    subject: Annotated[str, msgspec.Meta(min_length=3)]
    role: RoleName


class AuthConfig(Section, frozen=True):
    """Token authentication with roles (SPEC §9, docs/security.md). Off by default:
    then every client may do everything, and a listener on a non-loopback address
    is warned about at start."""

    enabled: bool = False
    # Salted scrypt hashes of the tokens (`logcaster token create`); null:
    # <persist.dir>/security/tokens.json. Re-read within a second of a change.
    tokens_file: str | None = None
    # Failed attempts from one address within failure_window_s before its next
    # attempts are refused unchecked, until the window has passed.
    max_failures: PositiveInt = 10
    failure_window_s: PositiveFloat = 60.0
    # Seconds a stream connection (TCP ingest) has from connect to its accepted
    # AUTH line; past it, refused (a client trickling its AUTH line holds a slot).
    login_timeout: PositiveFloat = 10.0
    certificate_roles: list[CertificateRole] = []  # verified client certificates -> roles
    # With auth on, plain syslog over UDP (no token, no certificate) is taken only
    # from these networks.
    udp_networks: list[str] = msgspec.field(default_factory=lambda: ["127.0.0.0/8", "::1/128"])


class AuditConfig(Section, frozen=True):
    """The audit log: every authentication decision and privileged action, as JSON
    lines, fsynced, rotated and retained (docs/security.md). On when it has a
    directory: `dir`, else <persist.dir>/audit; authentication needs one."""

    dir: str | None = None
    max_file_bytes: Annotated[int, msgspec.Meta(ge=4096)] = 64 * 1024 * 1024
    retention_files: PositiveInt | None = 20  # rotated files kept; null: all
    retention_age: PositiveFloat | None = None  # seconds since rotation; null: no age limit


NonNegativeFloat = Annotated[float, msgspec.Meta(ge=0)]


class RateLimitConfig(Section, frozen=True):
    """Per-client rate limits (SPEC §9): token buckets keyed by source address and
    token name. 0 turns a limit off (the default); a burst of 0 is one second's
    worth. Ingest over its limit is held back (TCP stops reading, HTTP answers
    429 with Retry-After, UDP drops and counts); queries over theirs are refused."""

    events_per_s: NonNegativeFloat = 0.0
    events_burst: NonNegativeFloat = 0.0
    bytes_per_s: NonNegativeFloat = 0.0
    bytes_burst: NonNegativeFloat = 0.0
    queries_per_s: NonNegativeFloat = 0.0
    queries_burst: NonNegativeFloat = 0.0
    max_clients: PositiveInt = 10_000  # clients tracked; the least recent is forgotten


# A field name as the parser reads it in key=value and as a JSON key.
FieldName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")]


class EncryptConfig(Section, frozen=True):
    """Field encryption (SPEC §9, docs/encryption.md): these fields' values are
    stored encrypted, with a keyed HMAC index for equality queries."""

    fields: Annotated[list[FieldName], msgspec.Meta(max_length=64)] = []
    # Fernet and HMAC keys (0600); null: <persist.dir>/security/field-keys.json.
    # Created on first start when missing. Set without fields, the server keeps
    # reading (decrypt=1, equality) what it stored encrypted before.
    keys_file: str | None = None


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
