"""What the simulator talks about (seed 002): seven services and eight error scenarios.

Everything here is data. Texts with `{name}` placeholders are filled once, when
the generator builds its pools from its seeded `random.Random`, never per event.
No message line may start with `[`, `{`, `<` or a digit, and none may end in
`:` or a space: LogCaster's multi-line rules (parsing/multiline.py) would take
such a line for the start of a new event or for an empty-message header.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

# A message and the key=value pairs that go with it (values without spaces or commas).
Message = tuple[str, tuple[tuple[str, str], ...]]
MessageFactory = Callable[[random.Random], Message]


@dataclass(frozen=True)
class Service:
    name: str
    version: str
    pods: tuple[str, ...]  # `payment-api-7d8f9c-abc123`: deployment, replica set, pod
    style: str  # "java" or "python": the shape of its stack traces
    package: str  # Java package / Python module segment in stack frames
    resource: str  # REST resource in routes (/api/v1/<resource>/N)

    @property
    def tag(self) -> str:
        return f"{self.name}/{self.version}"


def _pods(name: str, replica_set: str, suffixes: str) -> tuple[str, ...]:
    return tuple(f"{name}-{replica_set}-{s}" for s in suffixes.split())


SERVICES: tuple[Service, ...] = (
    Service(
        "payment-api", "v2.3.1", _pods("payment-api", "7d8f9c", "abc123 def456 k2m4p8"),
        "java", "payment.api", "payments",
    ),
    Service(
        "order-service", "v1.8.4", _pods("order-service", "5f6g7h", "jkl678 qrs234 x7y8z9"),
        "java", "order.service", "orders",
    ),
    Service(
        "auth-service", "v3.1.0", _pods("auth-service", "9p4q5r", "ghi345 tuv567 b3n5m7"),
        "python", "auth_service", "sessions",
    ),
    Service(
        "inventory-service", "v2.1.5",
        _pods("inventory-service", "6t7u8v", "mno901 wxy123 c4d6e8"),
        "java", "inventory.service", "inventory",
    ),
    Service(
        "notification-service", "v1.4.2",
        _pods("notification-service", "3h4j5k", "pqr789 fgh012 s9t1u3"),
        "python", "notification_service", "notifications",
    ),
    Service(
        "user-profile-api", "v2.0.3", _pods("user-profile-api", "8w9x0y", "lmn456 vwx890 h5j7k9"),
        "python", "user_profile", "users",
    ),
    Service(
        "analytics-engine", "v4.2.0", _pods("analytics-engine", "2a3b4c", "zab234 rst678 e1f3g5"),
        "python", "analytics_engine", "reports",
    ),
)  # fmt: skip
SERVICE_BY_NAME = {service.name: service for service in SERVICES}


@dataclass(frozen=True)
class Scenario:
    """One of seed 002's eight production error scenarios."""

    key: str  # stable id, also the `scenario` field of JSON output
    title: str  # the seed's name: Database, Payment, ...
    message: str
    details: tuple[str, ...]  # templates; `{n}`, `{m}` are filled from the scenario's ranges
    recovery: tuple[str, ...]
    java_exception: str
    java_cause: str  # "" when the exception has no cause
    java_cause_frames: tuple[str, ...]
    python_exception: str
    python_frames: tuple[tuple[str, str, str], ...]  # (file, function, code) of the library
    n_range: tuple[int, int] = (1, 100)
    m_range: tuple[int, int] = (1, 100)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        key="database",
        title="Database",
        message="Connection pool exhausted: unable to acquire connection within 30s timeout",
        details=(
            "Details: HikariCP connection pool size: 20/20 active, {n} waiting threads",
            "Details: Pool: primary-db, Active: 20/20, Idle: 0, Waiting: {n}, Max wait: {m}s",
        ),
        recovery=(
            "Recovery Action: Auto-retry enabled, circuit breaker: OPEN",
            "Recovery Action: Read traffic shifted to replica, writes queued for retry",
        ),
        java_exception="java.sql.SQLTransientConnectionException: Connection pool exhausted",
        java_cause="Caused by: org.postgresql.util.PSQLException: Connection refused",
        java_cause_frames=(
            "org.postgresql.jdbc.PgConnection.connect(PgConnection.java:234)",
            "org.postgresql.Driver.makeConnection(Driver.java:465)",
            "com.zaxxer.hikari.pool.PoolBase.newConnection(PoolBase.java:364)",
            "com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:172)",
        ),
        python_exception=(
            "sqlalchemy.exc.TimeoutError: QueuePool limit of size 20 overflow 10 reached, "
            "connection timed out, timeout 30.00"
        ),
        python_frames=(
            (
                "/usr/local/lib/python3.11/site-packages/sqlalchemy/pool/impl.py",
                "_do_get",
                "raise exc.TimeoutError(",
            ),
            (
                "/usr/local/lib/python3.11/site-packages/sqlalchemy/engine/base.py",
                "_execute_context",
                "conn = self._revalidate_connection()",
            ),
        ),
        n_range=(40, 150),
        m_range=(10, 30),
    ),
    Scenario(
        key="payment",
        title="Payment",
        message="Payment gateway timeout: Stripe API no response within 15s",
        details=(
            "Details: Gateway: Stripe, Endpoint: POST /v1/payment_intents, Attempt: 3/3, "
            "Amount: ${n}.{m}",
            "Details: Gateway: Stripe, Region: us-east-1, Latency p99: {n}00ms, Timeouts: {m}",
        ),
        recovery=(
            "Recovery Action: Transaction marked PENDING, retry scheduled with idempotency key",
            "Recovery Action: Failover to backup gateway (Adyen), customer notified",
        ),
        java_exception="com.stripe.exception.ApiConnectionException: Stripe API no response",
        java_cause="Caused by: java.net.SocketTimeoutException: Read timed out",
        java_cause_frames=(
            "java.base/sun.nio.ch.NioSocketImpl.timedRead(NioSocketImpl.java:288)",
            "java.base/java.net.Socket$SocketInputStream.read(Socket.java:1099)",
            "com.stripe.net.HttpURLConnectionClient.request(HttpURLConnectionClient.java:92)",
        ),
        python_exception="stripe.error.APIConnectionError: Request to Stripe timed out after 15s",
        python_frames=(
            (
                "/usr/local/lib/python3.11/site-packages/stripe/api_requestor.py",
                "request_raw",
                "rcontent, rcode, rheaders = self._client.request_with_retries(",
            ),
            (
                "/usr/local/lib/python3.11/site-packages/stripe/http_client.py",
                "_handle_request_error",
                "raise error.APIConnectionError(msg, should_retry=should_retry)",
            ),
        ),
        n_range=(10, 2500),
        m_range=(10, 99),
    ),
    Scenario(
        key="cache",
        title="Cache",
        message="Redis cluster failure: 2/3 nodes available, failover in progress",
        details=(
            "Details: Cluster: redis-prod, Failed node: redis-node-{n}:6379, "
            "Slots migrating: {m}/16384",
            "Details: Cluster state: fail, Masters reachable: 2/3, Replica promotion: {m}%",
        ),
        recovery=(
            "Recovery Action: Serving from local cache, writes buffered until failover completes",
            "Recovery Action: Cache bypassed, reads served from primary database",
        ),
        java_exception=(
            "org.springframework.data.redis.RedisConnectionFailureException: "
            "Unable to connect to Redis"
        ),
        java_cause="Caused by: io.lettuce.core.RedisConnectionException: Unable to connect",
        java_cause_frames=(
            "io.lettuce.core.RedisConnectionException.create(RedisConnectionException.java:78)",
            "io.lettuce.core.cluster.RedisClusterClient.connect(RedisClusterClient.java:356)",
        ),
        python_exception="redis.exceptions.ClusterDownError: CLUSTERDOWN The cluster is down",
        python_frames=(
            (
                "/usr/local/lib/python3.11/site-packages/redis/cluster.py",
                "execute_command",
                "return self._execute_command(target_node, *args, **kwargs)",
            ),
            (
                "/usr/local/lib/python3.11/site-packages/redis/cluster.py",
                "_execute_command",
                "raise ClusterDownError(str(e))",
            ),
        ),
        n_range=(1, 6),
        m_range=(100, 5461),
    ),
    Scenario(
        key="api",
        title="API",
        message="External API rate limit exceeded: 1000 req/min quota reached",
        details=(
            "Details: Provider: maps-partner, Quota: 1000/1000 req/min, Retry-After: {n}s",
            "Details: Provider: tax-calculator, Rejected: {m} requests, Retry-After: {n}s",
        ),
        recovery=(
            "Recovery Action: Requests throttled, exponential backoff engaged",
            "Recovery Action: Cached responses served, quota increase requested",
        ),
        java_exception=(
            "org.springframework.web.client.HttpClientErrorException: 429 Too Many Requests"
        ),
        java_cause="",
        java_cause_frames=(),
        python_exception=(
            "requests.exceptions.HTTPError: 429 Client Error: Too Many Requests "
            "for url: https://api.partner.example/v2/rates"
        ),
        python_frames=(
            (
                "/usr/local/lib/python3.11/site-packages/requests/models.py",
                "raise_for_status",
                "raise HTTPError(http_error_msg, response=self)",
            ),
        ),
        n_range=(5, 60),
        m_range=(10, 900),
    ),
    Scenario(
        key="auth",
        title="Auth",
        message="JWT token validation failed: signature verification error",
        details=(
            "Details: Token issuer: auth-service, Algorithm: RS256, Key ID mismatch",
            "Details: Algorithm: RS256, Key ID: key-{n}, Token age: {m}s, Audience: web",
        ),
        recovery=("Recovery Action: User session invalidated, re-authentication required",),
        java_exception=(
            "io.jsonwebtoken.security.SignatureException: JWT signature does not match"
        ),
        java_cause="",
        java_cause_frames=(),
        python_exception="jwt.exceptions.InvalidSignatureError: Signature verification failed",
        python_frames=(
            (
                "/usr/local/lib/python3.11/site-packages/jwt/api_jws.py",
                "_verify_signature",
                'raise InvalidSignatureError("Signature verification failed")',
            ),
        ),
        n_range=(1, 40),
        m_range=(1, 3600),
    ),
    Scenario(
        key="inventory",
        title="Inventory",
        message="Stock synchronization failed: pessimistic lock timeout after 10s",
        details=(
            "Details: SKU: PROD-{n}, Requested: 5, Available: 2, Waitlist: {m} customers",
            "Details: SKU: PROD-{n}, Warehouse: wh-3, Lock holder: tx-{m}, Wait: 10000ms",
        ),
        recovery=("Recovery Action: Transaction rolled back, stock reservation cancelled",),
        java_exception=(
            "org.hibernate.exception.LockAcquisitionException: Stock synchronization failed"
        ),
        java_cause="Caused by: javax.persistence.PessimisticLockException: could not execute",
        java_cause_frames=(
            "org.postgresql.jdbc.PgConnection.connect(PgConnection.java:189)",
            "com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:172)",
        ),
        python_exception=(
            "sqlalchemy.exc.OperationalError: (psycopg2.errors.LockNotAvailable) "
            "canceling statement due to lock timeout"
        ),
        python_frames=(
            (
                "/usr/local/lib/python3.11/site-packages/sqlalchemy/engine/default.py",
                "do_execute",
                "cursor.execute(statement, parameters)",
            ),
        ),
        n_range=(1000, 9999),
        m_range=(2, 40),
    ),
    Scenario(
        key="mq",
        title="Message Queue",
        message="Kafka consumer lag critical: 50000 messages behind",
        details=(
            "Details: Consumer group: orders-consumers, Topic: orders, Partition: {n}, "
            "Lag: {m}000 messages",
            "Details: Topic: payment-events, Partitions lagging: {n}/12, Oldest offset age: {m}s",
        ),
        recovery=(
            "Recovery Action: Consumer instances scaled out, partition rebalance triggered",
            "Recovery Action: Non-critical events paused, backlog draining",
        ),
        java_exception=(
            "org.apache.kafka.clients.consumer.CommitFailedException: "
            "Commit cannot be completed since the group has already rebalanced"
        ),
        java_cause=(
            "Caused by: org.apache.kafka.common.errors.TimeoutException: Timeout of 60000ms expired"
        ),
        java_cause_frames=(
            "org.apache.kafka.clients.NetworkClient.poll(NetworkClient.java:560)",
            "org.apache.kafka.clients.consumer.KafkaConsumer.poll(KafkaConsumer.java:1250)",
        ),
        python_exception=(
            "kafka.errors.KafkaTimeoutError: Failed to update metadata after 60.0 secs"
        ),
        python_frames=(
            (
                "/usr/local/lib/python3.11/site-packages/kafka/consumer/group.py",
                "poll",
                "records = self._poll_once(inner_timeout_ms(), max_records)",
            ),
        ),
        n_range=(0, 11),
        m_range=(50, 120),
    ),
    Scenario(
        key="memory",
        title="Memory",
        message="OutOfMemory: Metaspace 245MB/256MB, 15 Full GC in 5min",
        details=(
            "Details: Metaspace: 245MB/256MB, Heap: {n}MB/2048MB, Full GC: 15 in 5min",
            "Details: Container memory: {n}MB/2048MB, GC pause p99: {m}ms, OOM kills: 1",
        ),
        recovery=(
            "Recovery Action: Heap dump captured, pod scheduled for restart",
            "Recovery Action: Traffic drained from pod, memory limit raised to 3Gi",
        ),
        java_exception="java.lang.OutOfMemoryError: Metaspace",
        java_cause="",
        java_cause_frames=(),
        python_exception="MemoryError",
        python_frames=(
            (
                "/usr/local/lib/python3.11/site-packages/pandas/core/frame.py",
                "merge",
                "return merge(self, right, how=how, on=on)",
            ),
        ),
        n_range=(1800, 2048),
        m_range=(400, 3000),
    ),
)
SCENARIO_BY_KEY = {scenario.key: scenario for scenario in SCENARIOS}


def _ids(r: random.Random, prefix: str, lo: int = 100000, hi: int = 999999) -> str:
    return f"{prefix}-{r.randint(lo, hi)}"


def _amount(r: random.Random) -> str:
    return f"{r.randint(1, 900)}.{r.randint(0, 99):02d}"


def _ms(r: random.Random, lo: int, hi: int) -> tuple[str, str]:
    return ("duration_ms", str(r.randint(lo, hi)))


# INFO messages per service: normal operations (seed 002: "Order processed successfully").
INFO_MESSAGES: dict[str, tuple[MessageFactory, ...]] = {
    "payment-api": (
        lambda r: (
            f"Payment authorized: PAY-{r.randint(100000, 999999)} (${_amount(r)})",
            (("route", "/api/v1/payments"), ("status", "201"), _ms(r, 40, 600)),
        ),
        lambda r: (
            f"Refund issued for ORDER-{r.randint(100000, 999999)}",
            (("route", "/api/v1/refunds"), ("status", "200"), _ms(r, 30, 400)),
        ),
    ),
    "order-service": (
        lambda r: (
            f"Order processed successfully: ORDER-{r.randint(100000, 999999)} "
            f"(${_amount(r)}, {r.randint(1, 9)} items)",
            (("route", "/api/v1/orders"), ("status", "201"), _ms(r, 20, 400)),
        ),
        lambda r: (
            f"Order shipped: ORDER-{r.randint(100000, 999999)} via {r.choice(['UPS', 'DHL'])}",
            (("status", "200"), _ms(r, 10, 200)),
        ),
    ),
    "auth-service": (
        lambda r: (
            "User login successful",
            (("route", "/api/v1/sessions"), ("method", r.choice(["password", "sso", "mfa"]))),
        ),
        lambda r: ("Access token refreshed", (("ttl_s", "3600"), _ms(r, 2, 40))),
    ),
    "inventory-service": (
        lambda r: (
            f"Stock reserved: PROD-{r.randint(1000, 9999)} x{r.randint(1, 12)}",
            (("warehouse", f"wh-{r.randint(1, 6)}"), _ms(r, 5, 120)),
        ),
        lambda r: (
            f"Stock level synchronized for {r.randint(10, 400)} SKUs",
            (_ms(r, 100, 900),),
        ),
    ),
    "notification-service": (
        lambda r: (
            f"Email sent: template {r.choice(['order_confirmation', 'password_reset'])}",
            (("channel", "email"), _ms(r, 40, 900)),
        ),
        lambda r: ("Push notification delivered", (("channel", "push"), _ms(r, 20, 300))),
    ),
    "user-profile-api": (
        lambda r: ("Profile updated", (("route", "/api/v1/users"), ("status", "200"))),
        lambda r: ("Account balance fetched", (("cache", "hit"), _ms(r, 1, 30))),
    ),
    "analytics-engine": (
        lambda r: (
            f"Batch aggregation completed: {r.randint(1000, 90000)} events",
            (("job", "hourly_rollup"), _ms(r, 300, 1900)),
        ),
        lambda r: ("Dashboard query served", (("rows", str(r.randint(10, 5000))),)),
    ),
}

# WARN messages: degraded performance, resources running short (any service).
WARN_MESSAGES: tuple[MessageFactory, ...] = (
    lambda r: (
        f"Response time degraded: p95={r.randint(600, 3000)}ms (SLA: 500ms)",
        (_ms(r, 600, 3000),),
    ),
    lambda r: (f"Connection pool usage high: {r.randint(15, 19)}/20 active", ()),
    lambda r: (f"Retrying upstream call: attempt {r.randint(1, 3)}/3", (("retry", "true"),)),
    lambda r: (f"Memory usage at {r.randint(80, 95)}% of limit", (("limit_mb", "2048"),)),
    lambda r: (f"Rate limit approaching: {r.randint(800, 999)}/1000 req/min", ()),
    lambda r: (f"Disk usage at {r.randint(80, 94)}% on /var/lib/data", ()),
)
