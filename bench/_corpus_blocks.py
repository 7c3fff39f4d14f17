"""The multi-line error blocks of the bench corpus (bench/_corpus.py writes the file).

Java stack traces and Python tracebacks, 15-30 lines each, about 10% of all
lines: every block starts with a header line (`[ERROR] date time service/...`
or `ERROR: service/...`) and every other line is a continuation line, so the
server takes the block for one event. Owns the scenarios, the frames, the block
sizes and shares, and the two builders. Services and pods come from
bench/_corpus_lines.py. Every draw comes from the generator's seeded
`random.Random`: changing anything here changes the corpus bytes.

`Blocks` is what bench/_corpus.py asks of any corpus' multi-line events (these
seed-style blocks via `seed_blocks`, the every-language stack traces of
`--corpus traces` via bench/_corpus_traces.py).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from _corpus_lines import SERVICES, random_hex

Pods = dict[str, tuple[str, ...]]
# make(rnd, budget, "date time.ms", request id) -> the block's lines, or None when
# no block fits in `budget` extra lines (the generator then writes a single line).
MakeBlock = Callable[[random.Random, int, str, int], list[str] | None]


@dataclass(frozen=True)
class Blocks:
    """A corpus' multi-line events: how many lines they take and how to make one."""

    line_share: float  # share of all lines that are block lines
    mean_lines: float  # mean lines per block
    singles_scale: float  # factor on each single-line kind's share (1.0: as listed)
    make: MakeBlock
    # Whether a block joins the line before it into one event (a trace under an
    # error record: docs/multiline.md); None: never.
    joins: Callable[[str, list[str]], bool] | None = None


# Share of all *lines* that are lines of multi-line error blocks, the block
# sizes, and the share of blocks that are Java stack traces (the rest: Python).
BLOCK_LINE_SHARE = 0.10
BLOCK_MIN_LINES = 15
BLOCK_MAX_LINES = 30
JAVA_BLOCK_SHARE = 0.6

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


def java_block(
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


def python_block(
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
        f"Correlation ID: {random_hex(rnd, 8)}-{random_hex(rnd, 4)}-"
        f"{random_hex(rnd, 4)}-{random_hex(rnd, 4)}"
    )
    assert len(lines) == n_lines
    return lines


def seed_blocks(rnd: random.Random, pods: Pods, pools: dict[str, list[str]]) -> Blocks:
    """The default corpus' blocks: seed-style Java and Python error blocks (draws nothing)."""

    def make(rnd: random.Random, budget: int, ts: str, rid: int) -> list[str] | None:
        size = rnd.randint(BLOCK_MIN_LINES, BLOCK_MAX_LINES)
        if size - 1 > budget:
            if budget + 1 < BLOCK_MIN_LINES:  # no room left
                return None
            size = budget + 1
        if rnd.random() < JAVA_BLOCK_SHARE:
            return java_block(rnd, size, ts, pods, rid)
        return python_block(rnd, size, pods, rid)

    mean = (BLOCK_MIN_LINES + BLOCK_MAX_LINES) / 2
    return Blocks(line_share=BLOCK_LINE_SHARE, mean_lines=mean, singles_scale=1.0, make=make)
