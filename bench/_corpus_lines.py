"""The single-line formats of the bench corpus (bench/_corpus.py writes the file).

Owns the services and their pods (shared with the multi-line blocks in
bench/_corpus_blocks.py), the message templates of every single-line kind
(bracketed `[LEVEL] date time service/version [pod/NAME]: message`, JSON,
`date time LEVEL: message`, syslog RFC 5424 and 3164, logfmt), each kind's share
of the lines, and `build_pools`: each kind pre-rendered into a pool of
%-format strings, so the generator's hot loop costs one pool pick and one `%`
per line. Every draw comes from the generator's seeded `random.Random`, in a
fixed order: changing anything here changes the corpus bytes.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

POOL_BITS = 12  # 4096 pre-rendered variants per format
_POOL = 1 << POOL_BITS

# Share of all *lines* per kind. Single-line kinds add up to 90%; the rest are
# lines of multi-line error blocks.
SINGLE_SHARES: tuple[tuple[str, float], ...] = (
    ("info", 0.52),
    ("debug", 0.03),
    ("warn", 0.08),
    ("json", 0.10),
    ("plain", 0.06),
    ("syslog5424", 0.04),
    ("syslog3164", 0.01),
    ("logfmt", 0.06),
)


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


def random_hex(rnd: random.Random, n: int) -> str:
    return "".join(rnd.choice("0123456789abcdef") for _ in range(n))


def _alnum(rnd: random.Random, n: int) -> str:
    return "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))


def make_pods(rnd: random.Random) -> dict[str, tuple[str, ...]]:
    """Four pods in each of two replica sets per service (`payment-api-7d8f9c-abc123`)."""
    pods: dict[str, tuple[str, ...]] = {}
    for svc in SERVICES:
        sets = [random_hex(rnd, 6) for _ in range(2)]
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


def build_pools(rnd: random.Random, pods: dict[str, tuple[str, ...]]) -> dict[str, list[str]]:
    """%-formats per single-line kind.

    Argument order: info, debug, json, logfmt take (second, ms, request id); warn
    and syslog5424 take (second, ms); plain and syslog3164 take (second,).
    """
    pools: dict[str, list[str]] = {kind: [] for kind, _ in SINGLE_SHARES}
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
