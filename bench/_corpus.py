"""Deterministic seed-style log corpus for the ingest benchmark.

The corpus mixes the formats LogCaster sees from the seed simulators: bracketed
`[LEVEL] date time service/version [pod/NAME]: message` lines, JSON lines,
`date time LEVEL: message` lines, syslog (RFC 5424 and 3164), logfmt, and
multi-line error blocks (Java stack traces and Python tracebacks, 15-30 lines
each, about 10% of all lines). Every block starts with a header line and every
other block line is a continuation line, so the block is one event.

Generation is seeded and fast (a few seconds for 5M lines): every single-line
format is pre-rendered into a pool of %-format strings, so a line costs one
random pool pick and one `%` with its timestamp and request id. The result is
written to `bench/out/corpus-<lines>.log` with a sidecar `.json` holding the
line, event and byte counts and the byte offsets where an event starts (the
only places the corpus may be split between connections).
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import json
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

CORPUS_VERSION = 2
DEFAULT_SEED = 20260119

# Events per generation chunk; every chunk starts with an event, so each chunk
# start is a safe split point (about 256 KB apart).
_CHUNK_EVENTS = 2048
_POOL_BITS = 12  # 4096 pre-rendered variants per format
_POOL = 1 << _POOL_BITS
_START = dt.datetime(2026, 1, 19, 8, 0, 0, tzinfo=dt.UTC)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MS3 = tuple(f"{i:03d}" for i in range(1000))

# Share of all *lines* per kind. Single-line kinds add up to 90%; the rest are
# lines of multi-line error blocks.
_SINGLE_SHARES: tuple[tuple[str, float], ...] = (
    ("info", 0.52),
    ("debug", 0.03),
    ("warn", 0.08),
    ("json", 0.10),
    ("plain", 0.06),
    ("syslog5424", 0.04),
    ("syslog3164", 0.01),
    ("logfmt", 0.06),
)
BLOCK_LINE_SHARE = 0.10
BLOCK_MIN_LINES = 15
BLOCK_MAX_LINES = 30
_JAVA_BLOCK_SHARE = 0.6


@dataclass(frozen=True)
class Service:
    name: str
    versions: tuple[str, ...]
    pkg: str  # Java package / Python module segment
    resource: str  # REST resource name


SERVICES: tuple[Service, ...] = (
    Service("payment-api", ("v2.3.1", "v2.4.0"), "payment", "payments"),
    Service("auth-service", ("v3.1.0", "v3.1.2"), "auth", "sessions"),
    Service("order-service", ("v1.8.4", "v1.9.0"), "order", "orders"),
    Service("inventory-service", ("v4.0.2", "v4.1.0"), "inventory", "items"),
    Service("notification-service", ("v2.0.7",), "notification", "notifications"),
    Service("user-service", ("v5.2.0", "v5.2.1"), "user", "users"),
    Service("gateway", ("v1.12.3",), "gateway", "routes"),
)


@dataclass(frozen=True)
class CorpusInfo:
    """A generated corpus file and what the server should make of it."""

    path: Path
    lines: int
    events: int  # single lines + multi-line blocks: the server's expected Total
    nbytes: int
    blocks: int
    block_lines: int
    seed: int
    split_points: tuple[int, ...]  # byte offsets where an event starts, ascending, first 0
    generate_s: float  # seconds the generation took (0.0 when read from the cache)

    def to_json(self) -> dict[str, object]:
        return {
            "version": CORPUS_VERSION,
            "lines": self.lines,
            "events": self.events,
            "bytes": self.nbytes,
            "blocks": self.blocks,
            "block_lines": self.block_lines,
            "seed": self.seed,
            "split_points": list(self.split_points),
        }


# --------------------------------------------------------------------------- pools


def _hex(rnd: random.Random, n: int) -> str:
    return "".join(rnd.choice("0123456789abcdef") for _ in range(n))


def _alnum(rnd: random.Random, n: int) -> str:
    return "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))


def _pods(rnd: random.Random) -> dict[str, tuple[str, ...]]:
    """Four pods in each of two replica sets per service (`payment-api-7d8f9c-abc123`)."""
    pods: dict[str, tuple[str, ...]] = {}
    for svc in SERVICES:
        sets = [_hex(rnd, 6) for _ in range(2)]
        pods[svc.name] = tuple(f"{svc.name}-{rs}-{_alnum(rnd, 6)}" for rs in sets for _ in range(4))
    return pods


def _amount(rnd: random.Random) -> str:
    return f"{rnd.randint(1, 2500)}.{rnd.randint(0, 99):02d}"


# Message templates per service. `{rid}` becomes the line's unique request id;
# the other fields are drawn when the pool is built. Nothing may end in ":" or
# " " (the server would take the line for a header with an empty message).
_INFO_MESSAGES: dict[str, tuple[Callable[[random.Random], str], ...]] = {
    "payment-api": (
        lambda r: (
            f"Payment processed amount={_amount(r)} request_id=req-{{rid}} "
            f"user_id=user-{r.randint(1000, 9999)} duration_ms={r.randint(20, 400)}"
        ),
        lambda r: (
            f"Refund issued amount={_amount(r)} order_id=ord-{r.randint(10000, 99999)} "
            f"request_id=req-{{rid}} duration_ms={r.randint(30, 600)}"
        ),
        lambda r: (
            f"Card tokenized brand={r.choice(['visa', 'mastercard', 'amex'])} "
            f"request_id=req-{{rid}}"
        ),
    ),
    "auth-service": (
        lambda r: (
            f"User login successful request_id=req-{{rid}} user_id=user-{r.randint(1000, 9999)} "
            f"method={r.choice(['password', 'sso', 'mfa'])} duration_ms={r.randint(5, 200)}"
        ),
        lambda r: (
            f"Token refreshed request_id=req-{{rid}} user_id=user-{r.randint(1000, 9999)}"
            " ttl_s=3600"
        ),
    ),
    "order-service": (
        lambda r: (
            f"Order created order_id=ord-{r.randint(10000, 99999)} items={r.randint(1, 9)} "
            f"total={_amount(r)} request_id=req-{{rid}} user_id=user-{r.randint(1000, 9999)}"
        ),
        lambda r: (
            f"Order shipped order_id=ord-{r.randint(10000, 99999)} "
            f"carrier={r.choice(['ups', 'dhl', 'fedex'])} request_id=req-{{rid}}"
        ),
    ),
    "inventory-service": (
        lambda r: (
            f"Stock reserved sku=SKU-{r.randint(1000, 9999)} qty={r.randint(1, 20)} "
            f"warehouse=wh-{r.randint(1, 6)} request_id=req-{{rid}}"
        ),
        lambda r: (
            f"Stock level synced sku=SKU-{r.randint(1000, 9999)} "
            f"available={r.randint(0, 900)} request_id=req-{{rid}}"
        ),
    ),
    "notification-service": (
        lambda r: (
            f"Email sent template={r.choice(['order_confirmation', 'password_reset', 'welcome'])} "
            f"user_id=user-{r.randint(1000, 9999)} request_id=req-{{rid}} "
            f"duration_ms={r.randint(40, 900)}"
        ),
        lambda r: (
            f"Push notification delivered device=ios request_id=req-{{rid}} "
            f"user_id=user-{r.randint(1000, 9999)}"
        ),
    ),
    "user-service": (
        lambda r: (
            f"Profile updated user_id=user-{r.randint(1000, 9999)} fields=email,phone "
            f"request_id=req-{{rid}}"
        ),
        lambda r: (
            f"User fetched user_id=user-{r.randint(1000, 9999)} cache=hit "
            f"request_id=req-{{rid}} duration_ms={r.randint(1, 30)}"
        ),
    ),
    "gateway": (
        lambda r: (
            f"GET /api/v1/orders/{r.randint(1000, 9999)} 200 request_id=req-{{rid}} "
            f"upstream=order-service duration_ms={r.randint(5, 300)}"
        ),
        lambda r: (
            f"POST /api/v1/payments 201 request_id=req-{{rid}} upstream=payment-api "
            f"duration_ms={r.randint(30, 700)}"
        ),
    ),
}

_DEBUG_MESSAGES: tuple[Callable[[random.Random], str], ...] = (
    lambda r: f"Cache hit key=user:{r.randint(1000, 9999)} request_id=req-{{rid}}",
    lambda r: (
        f"SQL executed rows={r.randint(0, 50)} duration_ms={r.randint(1, 40)} "
        f"request_id=req-{{rid}}"
    ),
    lambda r: (
        f"Feature flag evaluated flag=new_checkout value={r.choice(['true', 'false'])} "
        f"request_id=req-{{rid}}"
    ),
)

_WARN_MESSAGES: tuple[Callable[[random.Random], str], ...] = (
    lambda r: f"Response time degraded: p95={r.randint(600, 3000)}ms (SLA: 500ms)",
    lambda r: f"Retrying request to {r.choice(SERVICES).name}: attempt {r.randint(1, 3)}/3",
    lambda r: f"Connection pool usage high: {r.randint(15, 20)}/20 active",
    lambda r: f"Rate limit approaching: {r.randint(800, 999)}/1000 requests per minute",
    lambda r: (
        f"Slow query detected: {r.randint(500, 5000)}ms SELECT id FROM orders "
        f"WHERE user_id = {r.randint(1000, 9999)}"
    ),
    lambda r: f"Memory usage at {r.randint(80, 95)}% of limit (heap={r.randint(1400, 1900)}MB)",
)

_PLAIN_MESSAGES: tuple[str, ...] = (
    "ERROR: Database connection failed",
    "ERROR: Failed to write audit record: disk quota exceeded",
    "WARN: Disk usage at 85% on /var/lib/data",
    "WARN: Certificate expires in 14 days",
    "INFO: Server started on port 8080",
    "INFO: Scheduled job cleanup_sessions finished in 312ms",
    "INFO: Health check passed",
    "DEBUG: Cache warmed with 12000 entries",
)

_JSON_MESSAGES: tuple[tuple[str, str], ...] = (
    ("info", "Order created"),
    ("info", "Payment authorized"),
    ("info", "Session started"),
    ("info", "Item added to cart"),
    ("debug", "Cache miss, loading from database"),
    ("warn", "Upstream latency above threshold"),
    ("error", "Failed to publish event"),
)

_LOGFMT_MESSAGES: tuple[tuple[str, str], ...] = (
    ("info", "request completed"),
    ("info", "job finished"),
    ("warn", "stock low"),
    ("warn", "retry scheduled"),
    ("error", "upstream returned 503"),
    ("debug", "cache refreshed"),
)

_SYSLOG_APPS: tuple[tuple[str, str], ...] = (
    ("nginx", "GET /health HTTP/1.1 200 2 0.001"),
    ("nginx", "POST /api/v1/orders HTTP/1.1 201 512 0.087"),
    ("sshd", "Accepted publickey for deploy from 10.0.3.7 port 52144 ssh2"),
    ("cron", "(root) CMD (/usr/local/bin/rotate-logs)"),
    ("kernel", "TCP: request_sock_TCP: Possible SYN flooding on port 443"),
    ("dockerd", "Container health status changed to healthy"),
)


def _esc(text: str) -> str:
    """Escape `%` for use inside a %-format."""
    return text.replace("%", "%%")


def _rid_format(text: str) -> str:
    """A message with one `{rid}` becomes a %-format with one `%d`."""
    assert text.count("{rid}") == 1, text
    return text.replace("%", "%%").replace("{rid}", "%d")


def _build_pools(rnd: random.Random, pods: dict[str, tuple[str, ...]]) -> dict[str, list[str]]:
    """%-formats per single-line kind.

    Argument order: info, debug, json, logfmt take (second, ms, request id); warn
    and syslog5424 take (second, ms); plain and syslog3164 take (second,).
    """
    pools: dict[str, list[str]] = {kind: [] for kind, _ in _SINGLE_SHARES}
    hosts = [f"web-{i:02d}" for i in range(1, 9)] + [f"worker-{i:02d}" for i in range(1, 5)]
    for _ in range(_POOL):
        svc = rnd.choice(SERVICES)
        version = rnd.choice(svc.versions)
        tag = f"{svc.name}/{version}"
        info_tag = tag + (f" pod/{rnd.choice(pods[svc.name])}" if rnd.random() < 0.35 else "")
        msg = rnd.choice(_INFO_MESSAGES[svc.name])(rnd)
        pools["info"].append(f"[INFO] %s.%s {info_tag}: " + _rid_format(msg))
        msg = rnd.choice(_DEBUG_MESSAGES)(rnd)
        pools["debug"].append(f"[DEBUG] %s.%s {tag}: " + _rid_format(msg))
        msg = rnd.choice(_WARN_MESSAGES)(rnd)
        pools["warn"].append(f"[WARN] %s.%s {tag}: " + _esc(msg))
        level, text = rnd.choice(_JSON_MESSAGES)
        pools["json"].append(
            '{"timestamp":"%s.%sZ","level":"'
            + level
            + f'","service":"{svc.name}","message":"{text}","request_id":"req-%d",'
            + f'"user_id":"user-{rnd.randint(1000, 9999)}","duration_ms":{rnd.randint(1, 900)}}}'
        )
        pools["plain"].append("%s " + _esc(rnd.choice(_PLAIN_MESSAGES)))
        app, text = rnd.choice(_SYSLOG_APPS)
        host = rnd.choice(hosts)
        pri = rnd.choice((11, 12, 13, 14, 30, 86))
        pools["syslog5424"].append(
            f"<{pri}>1 %s.%sZ {host} {app} {rnd.randint(100, 32000)} - - " + _esc(text)
        )
        pools["syslog3164"].append(
            f"<{pri}>%s {host} {app}[{rnd.randint(100, 32000)}]: " + _esc(text)
        )
        level, text = rnd.choice(_LOGFMT_MESSAGES)
        pools["logfmt"].append(
            f'ts=%s.%sZ level={level} service={svc.name} msg="{text}" '
            f"request_id=req-%d duration_ms={rnd.randint(1, 900)}"
        )
    return pools


# --------------------------------------------------------------------------- blocks

# (message, details, recovery action, exception, caused-by or "", cause frames)
_JAVA_SCENARIOS: tuple[tuple[str, str, str, str, str, tuple[str, ...]], ...] = (
    (
        "Connection pool exhausted: unable to acquire connection within 30s timeout",
        "Details: HikariCP connection pool size: 20/20 active, {n} waiting threads",
        "Recovery Action: Auto-retry enabled, circuit breaker: OPEN",
        "java.sql.SQLTransientConnectionException: Connection pool exhausted",
        "Caused by: org.postgresql.util.PSQLException: Connection refused",
        (
            "org.postgresql.jdbc.PgConnection.connect(PgConnection.java:234)",
            "org.postgresql.Driver.makeConnection(Driver.java:465)",
            "com.zaxxer.hikari.pool.PoolBase.newConnection(PoolBase.java:364)",
            "com.zaxxer.hikari.pool.HikariPool.createPoolEntry(HikariPool.java:476)",
        ),
    ),
    (
        "Upstream timeout: no response from payment gateway within 10000ms",
        "Details: Gateway: stripe-proxy, Endpoint: /v1/charges, Attempt: 3/3, Latency: {n}ms",
        "Recovery Action: Transaction queued for retry, customer notified",
        "org.springframework.web.client.ResourceAccessException: I/O error on POST request",
        "Caused by: java.net.SocketTimeoutException: Read timed out",
        (
            "java.base/sun.nio.ch.NioSocketImpl.timedRead(NioSocketImpl.java:288)",
            "java.base/java.net.Socket$SocketInputStream.read(Socket.java:1099)",
            "org.apache.http.impl.io.SessionInputBufferImpl.fillBuffer(SessionInputBufferImpl.java:153)",
        ),
    ),
    (
        "Message broker unavailable: failed to publish event order.created",
        "Details: Kafka cluster: kafka-prod, Topic: orders, Partition: {n}, Retries: 5",
        "Recovery Action: Event stored in outbox table for later delivery",
        "org.apache.kafka.common.errors.TimeoutException: Topic orders not present in metadata",
        "Caused by: org.apache.kafka.common.errors.NetworkException: Disconnected from node 2",
        (
            "org.apache.kafka.clients.NetworkClient.handleDisconnections(NetworkClient.java:893)",
            "org.apache.kafka.clients.NetworkClient.poll(NetworkClient.java:560)",
        ),
    ),
    (
        "Report generation aborted: heap space exhausted",
        "Details: Heap used: 2048MB/2048MB, GC overhead: 98%, Rows buffered: {n}",
        "Recovery Action: Request rejected, instance scheduled for restart",
        "java.lang.OutOfMemoryError: Java heap space",
        "",
        (),
    ),
    (
        "Request processing failed: unexpected null customer record",
        "Details: Customer lookup returned no row, Cache: MISS, Shard: {n}",
        "Recovery Action: Request failed with HTTP 500, alert raised",
        'java.lang.NullPointerException: Cannot invoke "Customer.getId()" because "c" is null',
        "",
        (),
    ),
)

_JAVA_APP_FRAMES = (
    "service.BusinessService.executeTransaction(BusinessService.java:{n})",
    "service.BusinessService.process(BusinessService.java:{n})",
    "controller.ApiController.handleRequest(ApiController.java:{n})",
    "repository.JdbcRepository.save(JdbcRepository.java:{n})",
    "client.UpstreamClient.call(UpstreamClient.java:{n})",
    "config.RetryTemplate.execute(RetryTemplate.java:{n})",
)
_JAVA_LIB_FRAMES = (
    "org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:897)",
    "org.springframework.web.servlet.DispatcherServlet.doDispatch(DispatcherServlet.java:1072)",
    "org.springframework.aop.framework.ReflectiveMethodInvocation.proceed"
    "(ReflectiveMethodInvocation.java:186)",
    "jakarta.servlet.http.HttpServlet.service(HttpServlet.java:658)",
    "org.apache.catalina.core.ApplicationFilterChain.doFilter(ApplicationFilterChain.java:205)",
    "org.apache.tomcat.util.threads.TaskThread$WrappingRunnable.run(TaskThread.java:61)",
    "java.base/java.lang.Thread.run(Thread.java:840)",
)

# (message, details, recovery action, exception line)
_PY_SCENARIOS: tuple[tuple[str, str, str, str], ...] = (
    (
        "JWT token validation failed: signature verification error",
        "Details: Token issuer: auth-service, Algorithm: RS256, Key ID mismatch",
        "Recovery Action: User session invalidated, re-authentication required",
        "io.jsonwebtoken.security.SignatureException: JWT token validation failed",
    ),
    (
        "Database query failed: could not connect to server",
        "Details: Host: pg-primary.internal, Port: 5432, Pool: 10/10 busy",
        "Recovery Action: Failover to replica initiated, writes paused",
        "psycopg2.OperationalError: could not connect to server: Connection refused",
    ),
    (
        "Template rendering failed: missing variable first_name",
        "Details: Template: order_confirmation, Locale: en_US, Channel: email",
        "Recovery Action: Notification moved to dead-letter queue",
        "KeyError: 'first_name'",
    ),
    (
        "Cache lookup failed: Redis connection reset by peer",
        "Details: Redis: redis-cache-0:6379, Command: GET, Timeout: 2s",
        "Recovery Action: Falling back to database, cache marked degraded",
        "redis.exceptions.ConnectionError: Error 104 while writing to socket",
    ),
    (
        "Invalid inventory payload: quantity must be positive",
        "Details: Field: quantity, Value: -3, Schema: reservation.v2",
        "Recovery Action: Request rejected with HTTP 422",
        "ValueError: quantity must be positive, got -3",
    ),
)

_PY_FRAMES = (
    ("/app/main.py", "<module>", "app.run()"),
    ("/app/{pkg}_service/server.py", "serve_forever", "self._handle(conn)"),
    (
        "/app/{pkg}_service/handlers.py",
        "process_request",
        "result = self.execute_business_logic(data)",
    ),
    ("/app/{pkg}_service/logic.py", "execute_business_logic", "return self.repo.load(key)"),
    ("/app/{pkg}_service/repository.py", "load", "row = self.db.fetch_one(QUERY, key)"),
    (
        "/usr/local/lib/python3.11/site-packages/sqlalchemy/engine/base.py",
        "execute",
        "return meth(self, distilled_params)",
    ),
    (
        "/usr/local/lib/python3.11/site-packages/redis/client.py",
        "execute_command",
        "return conn.retry.call_with_retry(command, error)",
    ),
)


def _java_block(
    rnd: random.Random, n_lines: int, ts: str, pods: dict[str, tuple[str, ...]], rid: int
) -> list[str]:
    svc = rnd.choice(SERVICES)
    level = "ERROR" if rnd.random() < 0.9 else "FATAL"
    header = (
        f"[{level}] {ts} {svc.name}/{rnd.choice(svc.versions)} pod/{rnd.choice(pods[svc.name])}: "
    )
    msg, details, recovery, exc, cause, cause_frames = rnd.choice(_JAVA_SCENARIOS)
    lines = [header, msg, details.format(n=rnd.randint(2, 250)), recovery, exc]
    tail = [
        f"    ... {rnd.randint(12, 48)} more",
        f"Thread: http-nio-8080-exec-{rnd.randint(1, 200)}, Request: "
        f"{rnd.choice(['POST', 'GET', 'PUT'])} /api/v1/{svc.resource}/{rid % 10000}",
    ]
    frames = n_lines - len(lines) - len(tail) - (1 if cause else 0)
    own = frames if not cause else max(1, frames - rnd.randint(1, max(1, len(cause_frames))))
    base = f"com.cali.{svc.pkg}.api."
    for i in range(own):
        if i < 4 or rnd.random() < 0.4:
            frame = base + rnd.choice(_JAVA_APP_FRAMES).format(n=rnd.randint(20, 400))
        else:
            frame = rnd.choice(_JAVA_LIB_FRAMES)
        lines.append("    at " + frame)
    if cause:
        lines.append(cause)
        pool = cause_frames or _JAVA_LIB_FRAMES
        lines.extend("    at " + pool[i % len(pool)] for i in range(frames - own))
    lines.extend(tail)
    assert len(lines) == n_lines
    return lines


def _python_block(
    rnd: random.Random, n_lines: int, pods: dict[str, tuple[str, ...]], rid: int
) -> list[str]:
    svc = rnd.choice(SERVICES)
    level = "ERROR" if rnd.random() < 0.9 else "CRITICAL"
    header = f"{level}: {svc.name}/{rnd.choice(svc.versions)} pod/{rnd.choice(pods[svc.name])} "
    msg, details, recovery, exc = rnd.choice(_PY_SCENARIOS)
    lines = [header, msg, details, recovery, "Traceback (most recent call last):"]
    frame_lines = n_lines - len(lines) - 2
    for i in range(frame_lines // 2):
        path, func, code = _PY_FRAMES[i] if i < 5 else rnd.choice(_PY_FRAMES[1:])
        lines.append(f'  File "{path.format(pkg=svc.pkg)}", line {rnd.randint(10, 600)}, in {func}')
        lines.append("    " + code)
    if frame_lines % 2:
        lines.append('  File "<frozen runpy>", line 198, in _run_module_as_main')
    lines.append(exc)
    lines.append(
        f"Request ID: req-{rid}, User ID: user-{rnd.randint(1000, 9999)}, "
        f"Correlation ID: {_hex(rnd, 8)}-{_hex(rnd, 4)}-{_hex(rnd, 4)}-{_hex(rnd, 4)}"
    )
    assert len(lines) == n_lines
    return lines


# --------------------------------------------------------------------------- generation


def _event_weights() -> tuple[list[str], list[float]]:
    """Kinds and their shares of *events*, so that lines come out in `_SINGLE_SHARES`."""
    kinds = [kind for kind, _ in _SINGLE_SHARES] + ["block"]
    mean_block = (BLOCK_MIN_LINES + BLOCK_MAX_LINES) / 2
    weights = [share for _, share in _SINGLE_SHARES] + [BLOCK_LINE_SHARE / mean_block]
    return kinds, weights


def generate(path: Path, lines: int, seed: int = DEFAULT_SEED) -> CorpusInfo:
    """Write a corpus of exactly `lines` lines to `path` (and its `.json` sidecar)."""
    if lines < 1:
        raise ValueError("a corpus needs at least one line")
    started = time.perf_counter()
    rnd = random.Random(seed)
    pods = _pods(rnd)
    pools = _build_pools(rnd, pods)
    kinds, weights = _event_weights()
    cum: list[float] = []
    acc = 0.0
    for w in weights:
        acc += w
        cum.append(acc)
    # Small ints are cheaper to dispatch on than strings in the hot loop.
    kind_ids = list(range(len(kinds)))
    k_info, k_debug, k_warn, k_json, k_plain, k_s5424, k_s3164, k_logfmt, k_block = kind_ids
    assert kinds[k_block] == "block" and kinds[k_logfmt] == "logfmt"
    p_info, p_debug, p_warn = pools["info"], pools["debug"], pools["warn"]
    p_json, p_plain, p_logfmt = pools["json"], pools["plain"], pools["logfmt"]
    p_s5424, p_s3164 = pools["syslog5424"], pools["syslog3164"]
    getrandbits = rnd.getrandbits
    choices = rnd.choices

    clock_ms = int(_START.timestamp() * 1000)
    cur_sec = -1
    sec_space = sec_t = sec_bsd = ""
    rid = 100_000
    written = 0
    events = blocks = block_lines = 0
    nbytes = 0
    split_points: list[int] = []
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tmp.open("wb") as f:
        while written < lines:
            # Near the end, fewer events than lines left, so blocks still fit.
            n_events = min(_CHUNK_EVENTS, max(1, (lines - written) * 9 // 10))
            # Lines a block may add beyond its own one, without overshooting `lines`.
            budget = lines - written - n_events
            out: list[str] = []
            append = out.append
            for kind in choices(kind_ids, cum_weights=cum, k=n_events):
                clock_ms += getrandbits(2)
                sec = clock_ms // 1000
                if sec != cur_sec:
                    cur_sec = sec
                    when = dt.datetime.fromtimestamp(sec, dt.UTC)
                    day = f"{when.year:04d}-{when.month:02d}-{when.day:02d}"
                    hms = f"{when.hour:02d}:{when.minute:02d}:{when.second:02d}"
                    sec_space = f"{day} {hms}"
                    sec_t = f"{day}T{hms}"
                    sec_bsd = f"{_MONTHS[when.month - 1]} {when.day:>2} {hms}"
                ms = _MS3[clock_ms % 1000]
                rid += 1
                if kind == k_info:
                    append(p_info[getrandbits(_POOL_BITS)] % (sec_space, ms, rid))
                elif kind == k_json:
                    append(p_json[getrandbits(_POOL_BITS)] % (sec_t, ms, rid))
                elif kind == k_warn:
                    append(p_warn[getrandbits(_POOL_BITS)] % (sec_space, ms))
                elif kind == k_logfmt:
                    append(p_logfmt[getrandbits(_POOL_BITS)] % (sec_t, ms, rid))
                elif kind == k_plain:
                    append(p_plain[getrandbits(_POOL_BITS)] % (sec_space,))
                elif kind == k_s5424:
                    append(p_s5424[getrandbits(_POOL_BITS)] % (sec_t, ms))
                elif kind == k_debug:
                    append(p_debug[getrandbits(_POOL_BITS)] % (sec_space, ms, rid))
                elif kind == k_s3164:
                    append(p_s3164[getrandbits(_POOL_BITS)] % (sec_bsd,))
                else:
                    size = rnd.randint(BLOCK_MIN_LINES, BLOCK_MAX_LINES)
                    if size - 1 > budget:
                        if budget + 1 < BLOCK_MIN_LINES:  # no room left: a plain INFO line
                            append(p_info[getrandbits(_POOL_BITS)] % (sec_space, ms, rid))
                            continue
                        size = budget + 1
                    budget -= size - 1
                    if rnd.random() < _JAVA_BLOCK_SHARE:
                        out.extend(_java_block(rnd, size, f"{sec_space}.{ms}", pods, rid))
                    else:
                        out.extend(_python_block(rnd, size, pods, rid))
                    blocks += 1
                    block_lines += size
            out.append("")  # trailing newline
            data = "\n".join(out).encode()
            split_points.append(nbytes)
            f.write(data)
            nbytes += len(data)
            written += len(out) - 1
            events += n_events
    info = CorpusInfo(
        path=path,
        lines=written,
        events=events,
        nbytes=nbytes,
        blocks=blocks,
        block_lines=block_lines,
        seed=seed,
        split_points=tuple(split_points),
        generate_s=time.perf_counter() - started,
    )
    assert written == lines, (written, lines)
    os.replace(tmp, path)
    _meta_path(path).write_text(json.dumps(info.to_json()) + "\n")
    return info


def _meta_path(path: Path) -> Path:
    return path.with_suffix(".json")


def corpus_path(out_dir: Path, lines: int) -> Path:
    return out_dir / f"corpus-{lines}.log"


def load_cached(path: Path, lines: int, seed: int = DEFAULT_SEED) -> CorpusInfo | None:
    """The cached corpus at `path` if it was made by this generator with these settings."""
    try:
        meta = json.loads(_meta_path(path).read_text())
        size = path.stat().st_size
    except (OSError, ValueError):
        return None
    if (
        not isinstance(meta, dict)
        or meta.get("version") != CORPUS_VERSION
        or meta.get("lines") != lines
        or meta.get("seed") != seed
        or meta.get("bytes") != size
    ):
        return None
    return CorpusInfo(
        path=path,
        lines=int(meta["lines"]),
        events=int(meta["events"]),
        nbytes=int(meta["bytes"]),
        blocks=int(meta["blocks"]),
        block_lines=int(meta["block_lines"]),
        seed=int(meta["seed"]),
        split_points=tuple(int(x) for x in meta["split_points"]),
        generate_s=0.0,
    )


def remove(info: CorpusInfo) -> None:
    """Delete a corpus file and its sidecar."""
    for p in (info.path, _meta_path(info.path)):
        p.unlink(missing_ok=True)


def split(data: memoryview, split_points: Sequence[int], parts: int) -> list[memoryview]:
    """Cut `data` into `parts` pieces of about equal size, only at event starts.

    Never cuts inside a multi-line block. With fewer split points than `parts`
    some pieces come out empty; callers should not ask for that many.
    """
    if parts < 1:
        raise ValueError("parts must be >= 1")
    total = len(data)
    points = sorted(set(split_points) | {0})
    cuts = [0]
    for k in range(1, parts):
        target = total * k // parts
        i = bisect.bisect_left(points, target)
        candidates = [points[j] for j in (i - 1, i) if 0 <= j < len(points)]
        best = min(candidates, key=lambda p: abs(p - target))
        cuts.append(max(best, cuts[-1]))
    cuts.append(total)
    return [data[a:b] for a, b in itertools.pairwise(cuts)]
