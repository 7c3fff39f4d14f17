"""`--corpus frequent`: single-line web and application logs where common words are common.

The default corpus' searched words are rare (`timeout` is in about 0.1% of its
events), so it hides what a count costs per match. This corpus is what a web
service writes: nginx access lines (the combined format with a `key=value` tail),
Go `log/slog` text lines and zap-style JSON lines, every line one event, where

- `timeout` is in 12.7% of events at 1M lines (a client's `timeout=` setting
  echoed in its call lines, upstream timeouts, i/o timeouts), `upstream` in
  11.1%, `cache` in 10.7%, `refused` in 2.0%;
- every event carries its request's `request_id=req-NNNNNNNN` (8 digits, unique
  per request, fixed width so no id is a prefix of another) and a 32-hex
  `trace_id` (`"request_id":"req-…"` and `"trace_id":"…"` in JSON);
- a request writes 1 to 6 events (mean 3), interleaved with those of up to
  15 others in flight, so an id lookup finds a handful of events;
- app lines carry `user_id=user-NNNN` in about half the lines and `took Nms` in
  about half (0.5% of all events 1000 ms or more); 4% of access lines have
  a 5xx status, on every path.

Shares of events: access 40%, slog text 35%, JSON 25%. Generation is seeded and
cheap like the default corpus': each kind is pre-rendered into a pool of 4,096
%-format strings; a line costs one pool pick and one `%` with its time and its
request's ids. bench/_corpus.py owns the file, its sidecar and the cache;
`frequent_chunks` yields the text. Changing anything here changes the corpus
bytes: bump bench/_corpus.py's CORPUS_VERSION.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterator

POOL_BITS = 12
_POOL = 1 << POOL_BITS
_IN_FLIGHT_BITS = 4  # 16 requests in flight
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MS3 = tuple(f"{i:03d}" for i in range(1000))
_ID_MUL = 61_803_399  # coprime to 10: counter -> 8-digit id is a bijection mod 10^8
_ID_MOD = 100_000_000
# Cumulative shares of events: access, slog text, JSON.
_KIND_CUM = (0.40, 0.75, 1.0)

SERVICES = ("checkout", "cart", "catalog", "search", "payments", "accounts", "shipping")
_UPSTREAMS = ("payments-svc", "inventory-svc", "pricing-svc", "users-svc", "redis", "postgres")
_PATHS = (
    ("GET", "/api/v1/products/{n}"),
    ("GET", "/api/v1/search?q={q}&page={p}"),
    ("GET", "/api/v1/cart"),
    ("POST", "/api/v1/cart/items"),
    ("POST", "/api/v1/checkout"),
    ("GET", "/api/v1/checkout/{n}/status"),
    ("GET", "/api/v1/orders/{n}"),
    ("POST", "/api/v1/payments"),
    ("GET", "/api/v1/users/me"),
    ("GET", "/static/js/app.{h}.js"),
    ("GET", "/health"),
)
_QUERIES = ("shoes", "red+dress", "laptop", "usb-c+cable", "coffee", "desk+lamp", "tent")
_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/121.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 Version/17.2 Safari",
    "okhttp/4.12.0",
    "curl/8.5.0",
    "kube-probe/1.29",
)
# (status, weight): about 4% 5xx.
_STATUSES = (
    (200, 78),
    (201, 5),
    (204, 2),
    (304, 3),
    (400, 2),
    (401, 1),
    (404, 4),
    (429, 1),
    (500, 1.5),
    (502, 0.7),
    (503, 0.6),
    (504, 1.2),
)

# An app message: (level, msg, extra key=value pairs), drawn when the pool is built.
Message = tuple[str, str, list[tuple[str, str]]]


def _took(r: random.Random) -> str:
    """A latency in ms: mostly tens, about 2% 1000 ms or more."""
    if r.random() < 0.02:
        return str(r.randint(1000, 9000))
    return str(int(r.lognormvariate(3.5, 0.9)) + 1)


def _user(r: random.Random) -> list[tuple[str, str]]:
    return [("user_id", f"user-{r.randint(1000, 9999)}")] if r.random() < 0.5 else []


def _call(r: random.Random) -> Message:
    up = r.choice(_UPSTREAMS)
    t = r.choice(("500ms", "1s", "2s", "5s"))
    return "INFO", f"upstream call ok took {_took(r)}ms", [("upstream", up), ("timeout", t)]


def _upstream_timeout(r: random.Random) -> Message:
    pairs = [("upstream", r.choice(_UPSTREAMS)), ("attempt", str(r.randint(1, 3)))]
    return "WARN", "upstream timeout, retrying", pairs


def _deadline(r: random.Random) -> Message:
    op = r.choice(("SELECT orders", "UPDATE carts", "INSERT payments", "GET session"))
    return "ERROR", f"query failed: {op}: i/o timeout", [("db", r.choice(("postgres", "redis")))]


def _refused(r: random.Random) -> Message:
    host = f"10.0.{r.randint(1, 9)}.{r.randint(2, 250)}:{r.choice((5432, 6379, 8080))}"
    return "ERROR", f"dial tcp {host}: connect: connection refused", []


def _plain(r: random.Random) -> Message:
    n = r.randrange(9)
    if n == 0:
        return "INFO", f"cart updated took {_took(r)}ms", [("items", str(r.randint(1, 12)))]
    if n == 1:
        return "INFO", "order placed", [("order_id", f"ord-{r.randint(10000, 99999)}")]
    if n == 2:
        return "INFO", f"payment authorized took {_took(r)}ms", [("provider", "stripe")]
    if n == 3:
        return "DEBUG", "cache hit", [("key", f"product:{r.randint(1000, 99999)}")]
    if n == 4:
        return "INFO", "cache miss, loading", [("key", f"cart:{r.randint(1000, 99999)}")]
    if n == 5:
        return "INFO", f"search executed took {_took(r)}ms", [("hits", str(r.randint(0, 400)))]
    if n == 6:
        return "WARN", "inventory low", [("sku", f"SKU-{r.randint(1000, 9999)}")]
    if n == 7:
        return "INFO", "session refreshed", [("ttl", "3600s")]
    return "INFO", f"shipping quote computed took {_took(r)}ms", [("carrier", "dhl")]


def _message(r: random.Random) -> Message:
    """One app message; 21.7% of them hold `timeout` (app lines are 60% of events)."""
    x = r.random()
    if x < 0.150:
        return _call(r)
    if x < 0.190:
        return _upstream_timeout(r)
    if x < 0.217:
        return _deadline(r)
    if x < 0.250:
        return _refused(r)
    return _plain(r)


def _esc(text: str) -> str:
    return text.replace("%", "%%")


def _slog(r: random.Random) -> str:
    """`time=%s.%sZ level=… msg="…" service=… … request_id=req-%s trace_id=%s`."""
    level, msg, extra = _message(r)
    pairs = " ".join(f"{k}={v}" for k, v in [*extra, *_user(r)])
    svc = r.choice(SERVICES)
    return (
        f'time=%s.%sZ level={level} msg="{_esc(msg)}" service={svc} '
        + (_esc(pairs) + " " if pairs else "")
        + "request_id=req-%s trace_id=%s"
    )


def _json(r: random.Random) -> str:
    """`{"level":"…","ts":"%s.%sZ","caller":…,"msg":"…",…,"request_id":"req-%s","trace_id":"%s"}`."""
    level, msg, extra = _message(r)
    svc = r.choice(SERVICES)
    caller = f"{svc}/{r.choice(('handler', 'client', 'store'))}.go:{r.randint(20, 400)}"
    pairs = "".join(f',"{k}":"{v}"' for k, v in [*extra, *_user(r)])
    return (
        f'{{"level":"{level.lower()}","ts":"%s.%sZ","logger":"{svc}","caller":"{caller}",'
        f'"msg":"{_esc(msg)}"{_esc(pairs)},"request_id":"req-%s","trace_id":"%s"}}'
    )


def _access(r: random.Random, statuses: list[int]) -> str:
    """nginx combined plus `rt= uct= request_id= trace_id=`; takes (time, id, trace)."""
    method, path = r.choice(_PATHS)
    n, q, p, h = r.randint(1000, 99999), r.choice(_QUERIES), r.randint(1, 5), r.getrandbits(32)
    path = path.format(n=n, q=q, p=p, h=f"{h:08x}")
    status = r.choice(statuses)
    size = 0 if status in (204, 304) else r.randint(120, 48000)
    ip = f"{r.choice((10, 172, 192))}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"
    rt = r.randint(1, 900) if status < 500 else r.randint(900, 30000)
    return (
        f'{ip} - - [%s +0000] "{method} {_esc(path)} HTTP/1.1" {status} {size} "-" '
        f'"{r.choice(_AGENTS)}" rt={rt / 1000:.3f} uct=0.{r.randint(0, 9):03d} '
        "request_id=req-%s trace_id=%s"
    )


def build_pools(rnd: random.Random) -> tuple[list[str], list[str], list[str]]:
    """(access, slog, JSON) %-formats, 4,096 each."""
    statuses = [s for s, w in _STATUSES for _ in range(int(w * 10))]
    access = [_access(rnd, statuses) for _ in range(_POOL)]
    slog = [_slog(rnd) for _ in range(_POOL)]
    json = [_json(rnd) for _ in range(_POOL)]
    return access, slog, json


def frequent_chunks(
    rnd: random.Random, lines: int, start: dt.datetime, chunk_events: int
) -> Iterator[tuple[bytes, int, int]]:
    """(text, lines, events) per chunk of up to `chunk_events` one-line events, `lines` in all."""
    access, slog, json = build_pools(rnd)
    getrandbits = rnd.getrandbits
    choices: Callable[..., list[int]] = rnd.choices
    clock_ms = int(start.timestamp() * 1000)
    cur_sec = -1
    sec_t = sec_clf = ""
    counter = 0
    # The requests in flight: their id, trace id and events still to write.
    ids = ["" for _ in range(1 << _IN_FLIGHT_BITS)]
    traces = ["" for _ in range(1 << _IN_FLIGHT_BITS)]
    left = [0 for _ in range(1 << _IN_FLIGHT_BITS)]
    written = 0
    while written < lines:
        n = min(chunk_events, lines - written)
        out: list[str] = []
        append = out.append
        for kind in choices((0, 1, 2), cum_weights=_KIND_CUM, k=n):
            clock_ms += getrandbits(2)
            sec = clock_ms // 1000
            if sec != cur_sec:
                cur_sec = sec
                w = dt.datetime.fromtimestamp(sec, dt.UTC)
                hms = f"{w.hour:02d}:{w.minute:02d}:{w.second:02d}"
                sec_t = f"{w.year:04d}-{w.month:02d}-{w.day:02d}T{hms}"
                sec_clf = f"{w.day:02d}/{_MONTHS[w.month - 1]}/{w.year:04d}:{hms}"
            slot = getrandbits(_IN_FLIGHT_BITS)
            if not left[slot]:
                counter += 1
                ids[slot] = "%08d" % ((counter * _ID_MUL) % _ID_MOD)  # noqa: UP031
                traces[slot] = "%032x" % getrandbits(128)  # noqa: UP031
                left[slot] = 1 + getrandbits(3) % 6
            left[slot] -= 1
            if kind == 0:
                append(access[getrandbits(POOL_BITS)] % (sec_clf, ids[slot], traces[slot]))
            elif kind == 1:
                ms = _MS3[clock_ms % 1000]
                append(slog[getrandbits(POOL_BITS)] % (sec_t, ms, ids[slot], traces[slot]))
            else:
                ms = _MS3[clock_ms % 1000]
                append(json[getrandbits(POOL_BITS)] % (sec_t, ms, ids[slot], traces[slot]))
        out.append("")
        written += n
        yield "\n".join(out).encode(), n, n
