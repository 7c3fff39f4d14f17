"""A generated corpus whose every field the store tests know, and the brute force over it.

`make_corpus` builds events in mixed formats (simulator headers, JSON, logfmt,
plain text, multi-line stack traces) whose level, service, time and text the
test knows by construction (`Known`). A `Shape` is a query's parameters with
the same test written over `Known`; `expected` is its brute-force answer:
FOUND and the row ids in answer order.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

# Event times of the corpus: March 2024, far from any receive time of a test run,
# so a time window over them never holds a plain-text event (their time is the
# receive time).
BASE_MS = 1_709_251_200_000  # 2024-03-01T00:00:00Z


# ---- the corpus ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Known:
    """One event of the corpus, as the test built it."""

    text: str  # the event body (lines of a multi-line event joined by "\n")
    level: str | None
    service: str | None
    ts: float | None  # its own time; None: plain text, its time is the receive time
    user: str | None = None  # the `user=` field, if the text has one
    tenant: str | None = None  # the JSON `tenant` field, if any

    @property
    def lines(self) -> int:
        return self.text.count("\n") + 1


SERVICES = ("payment-api", "cart", "auth", "search.svc", "billing-worker")
# Canonical level -> spellings the formats use for it (the parser normalizes them).
SPELLINGS = {
    "TRACE": ("TRACE",),
    "DEBUG": ("DEBUG", "debug"),
    "INFO": ("INFO", "INFO", "info", "Notice"),
    "WARN": ("WARN", "WARNING", "warn"),
    "ERROR": ("ERROR", "error", "ERR"),
    "FATAL": ("FATAL", "CRITICAL"),
}
LEVEL_WEIGHTS = {"TRACE": 2, "DEBUG": 8, "INFO": 60, "WARN": 15, "ERROR": 12, "FATAL": 3}
PLAIN_STARTS = ("cache", "scheduler", "worker", "gc", "session", "backup", "replica")


def _message(rng: random.Random) -> tuple[str, str | None]:
    """A message and the `user=` value it carries (if any). No '=' otherwise, no
    "ID:", no trailing ':' or ' ' (those would add fields or join lines)."""
    n = rng.randrange(1000)
    user = f"u-{rng.randrange(40)}"
    k = rng.randrange(12)
    if k == 0:
        return f"payment p-{n} declined by issuer after {rng.randrange(1, 5)} attempts", None
    if k == 1:
        ms = rng.choice((rng.randrange(10, 99), rng.randrange(100, 9999)))
        return f"upstream timeout after {ms}ms calling {rng.choice(SERVICES)}", None
    if k == 2:
        return f"connection refused to 10.0.{n % 256}.{n // 4}:5432", None
    if k == 3:
        return f"checkout completed for cart c-{n} user={user} total {n / 7:.2f}", user
    if k == 4:
        return "deadlock detected on table orders, retrying", None
    if k == 5:
        return f"request done user={user} status={rng.choice((200, 404, 500))}", user
    if k == 6:
        return f"café order c-{n} shipped — ok", None  # not ASCII
    if k == 7:
        return f'file C:\\data\\k{n % 10} not found, "fallback" used', None  # \ and "
    if k == 8:
        return f"cache miss for key k{n} in region eu-{n % 3}", None
    if k == 9:
        return f"slow query took {n} ms on shard {n % 16}", None
    return f"session s-{n} refreshed for tenant t-{n % 5}", None


def _stamp(ms: int, sep: str = " ") -> str:
    return time.strftime(f"%Y-%m-%d{sep}%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}"


def make_corpus(n: int, seed: int = 5) -> list[Known]:
    """`n` events in mixed formats, each with its fields known by construction.

    Simulator header lines (most), JSON lines (string and numeric times), logfmt,
    plain text without a time, and multi-line Java/Python stack traces. Event
    times move forward with jitter (not sorted by id).
    """
    rng = random.Random(seed)
    levels = list(LEVEL_WEIGHTS)
    weights = list(LEVEL_WEIGHTS.values())
    out: list[Known] = []
    for i in range(n):
        ms = BASE_MS + i * 40 + rng.randrange(-20_000, 20_000)
        level = rng.choices(levels, weights)[0]
        spelled = rng.choice(SPELLINGS[level])
        service = rng.choice(SERVICES)
        msg, user = _message(rng)
        kind = rng.random()
        if kind < 0.55:
            ver = f"v{rng.randrange(1, 4)}.{rng.randrange(10)}"
            text = f"[{spelled}] {_stamp(ms)} {service}/{ver} pod/{service}-{i % 7}: {msg}"
            out.append(Known(text, level, service, ms / 1000, user))
        elif kind < 0.70:
            tenant = f"t-{rng.randrange(8)}"
            if rng.random() < 0.5:
                when = json.dumps(_stamp(ms, "T") + "Z")
                key = "ts"
            else:
                when, key = repr(ms / 1000), "time"
            doc = (
                f'{{"{key}":{when},"level":"{spelled.lower()}","service":"{service}",'
                f'"msg":{json.dumps(msg, ensure_ascii=False)},"tenant":"{tenant}",'
                f'"attempt":{rng.randrange(3)}}}'
            )
            out.append(Known(doc, level, service, ms / 1000, user, tenant))
        elif kind < 0.82:
            if "\\" in msg or '"' in msg:
                msg = f"slow query took {i} ms"  # keep the logfmt quoting simple
            # A pair inside the quoted msg is part of its value, not a field.
            user = None
            text = (
                f"ts={_stamp(ms, 'T')}Z level={spelled.lower()} service={service} "
                f"msg={json.dumps(msg, ensure_ascii=False)} duration_ms={rng.randrange(900)}"
            )
            if rng.random() < 0.5:
                user = f"u-{rng.randrange(40)}"
                text += f" user={user}"
            out.append(Known(text, level, service, ms / 1000, user))
        elif kind < 0.92:
            start = rng.choice(PLAIN_STARTS)
            out.append(Known(f"{start} {msg}", None, None, None, user))
        else:
            out.append(_trace(rng, i, ms, service))
    return out


def _trace(rng: random.Random, i: int, ms: int, service: str) -> Known:
    """A multi-line ERROR event: a Java stack trace or a Python traceback."""
    head = (
        f"[ERROR] {_stamp(ms)} {service}/v1.0 pod/{service}-{i % 7}: unhandled error in job j-{i}"
    )
    if rng.random() < 0.6:
        lines = [
            head,
            f"java.lang.IllegalStateException: cart c-{i} is locked",
            f"    at com.shop.cart.CartService.lock(CartService.java:{rng.randrange(400)})",
            "    at com.shop.cart.CartController.post(CartController.java:88)",
            "Caused by: java.sql.SQLException: deadlock detected",
            f"    ... {rng.randrange(5, 40)} more",
        ]
    else:
        lines = [
            head,
            "Traceback (most recent call last):",
            f'  File "/app/worker.py", line {rng.randrange(400)}, in run',
            "    job()",
            f"ValueError: bad job {i}",
        ]
    return Known("\n".join(lines), "ERROR", service, ms / 1000)


def corpus_bytes(events: Sequence[Known]) -> bytes:
    return "".join(ev.text + "\n" for ev in events).encode()


def chunks_of(events: Sequence[Known], size: int) -> list[bytes]:
    """The corpus as sends of `size` whole events each."""
    return [corpus_bytes(events[i : i + size]) for i in range(0, len(events), size)]


# ---- the brute force ----------------------------------------------------------------

Pred = Callable[[Known], bool]
MID = BASE_MS / 1000


def _window(lo: float, hi: float) -> Pred:
    return lambda ev: ev.ts is not None and lo <= ev.ts <= hi


@dataclass(frozen=True)
class Shape:
    """One query shape: its parameters and the same test written over `Known`."""

    name: str
    params: str
    pred: Pred
    limit: int = 40
    order: str = "desc"


# Window bounds half a millisecond off: no event time (whole milliseconds) is near them.
LO, HI = MID + 300.0005, MID + 700.0005
TIMEOUT_RE = re.compile(r"timeout after [0-9]{3,}ms")
_BOUNDARY = re.compile(r"\bheck|\bcart\b")  # `heck` only inside `checkout`
_ANY = re.compile(r"caf. |Caused by")
SHAPES = [
    Shape("everything", "", lambda ev: True),
    Shape("keyword", "keyword=timeout", lambda ev: "timeout" in ev.text),
    Shape(
        "and",
        "keywords=payment,declined operator=AND",
        lambda ev: "payment" in ev.text and "declined" in ev.text,
    ),
    Shape(
        "or",
        "keywords=refused,deadlock operator=OR",
        lambda ev: "refused" in ev.text or "deadlock" in ev.text,
    ),
    # Both words of an AND on different lines of one multi-line event.
    Shape(
        "and_multiline",
        "keywords=CartService,deadlock",
        lambda ev: "CartService" in ev.text and "deadlock" in ev.text,
    ),
    Shape(
        "regex", 'regex="timeout after [0-9]{3,}ms"', lambda ev: bool(TIMEOUT_RE.search(ev.text))
    ),
    Shape("backslash", "keyword=\\data\\k3", lambda ev: "\\data\\k3" in ev.text),
    Shape("unicode", "keyword=café", lambda ev: "café" in ev.text),
    Shape("level", "level=ERROR", lambda ev: ev.level == "ERROR"),
    Shape("levels", "level=WARN,FATAL", lambda ev: ev.level in ("WARN", "FATAL")),
    Shape("service", "service=search.svc", lambda ev: ev.service == "search.svc"),
    Shape("window", f"time_from={LO} time_to={HI}", _window(LO, HI)),
    # The newest times: across the store and the memory tail (ISO form of the bounds).
    Shape(
        "window_tail",
        "time_from=2024-03-01T00:19:50.0005Z time_to=2024-03-01T00:20:10.0005",
        _window(MID + 1190.0005, MID + 1210.0005),
    ),
    Shape(
        "level_window",
        f"level=DEBUG time_from={LO} time_to={HI}",
        lambda ev: ev.level == "DEBUG" and _window(LO, HI)(ev),
    ),
    Shape(
        "keyword_level",
        "keyword=cart level=ERROR",
        lambda ev: "cart" in ev.text and ev.level == "ERROR",
    ),
    Shape("field_logfmt", "user=u-7", lambda ev: ev.user == "u-7"),
    Shape("field_json", "tenant=t-3", lambda ev: ev.tenant == "t-3"),
    Shape(
        "field_service_level",
        "user=u-1 service=cart level=INFO,WARN",
        lambda ev: ev.user == "u-1" and ev.service == "cart" and ev.level in ("INFO", "WARN"),
    ),
    Shape("asc", "keyword=checkout", lambda ev: "checkout" in ev.text, order="asc"),
    Shape("asc_level", "level=FATAL", lambda ev: ev.level == "FATAL", order="asc"),
    Shape("small_limit", "level=INFO", lambda ev: ev.level == "INFO", limit=3),
    Shape("nothing", "keyword=no-such-word-anywhere", lambda ev: False),
    # The token index (store/terms.py): a keyword inside a longer term, one with
    # a space, and one that only the escaped text holds (`\\n` + `Caused`).
    Shape("inside_term", "keyword=imeou", lambda ev: "imeou" in ev.text),
    Shape("phrase", 'keyword="timeout after"', lambda ev: "timeout after" in ev.text),
    Shape("escape_letter", "keyword=nCaused", lambda ev: "nCaused" in ev.text),
    Shape("caused", "keyword=Caused", lambda ev: "Caused" in ev.text),
    # Regexes answered in bulk (store/bulk_rows.py): plain lines are not confirmed
    # unless a word boundary was dropped from the translation.
    Shape(
        "regex_boundary",
        'regex="\\bheck|\\bcart\\b"',
        lambda ev: bool(_BOUNDARY.search(ev.text)),
    ),
    Shape("regex_any", 'regex="caf. |Caused by"', lambda ev: bool(_ANY.search(ev.text))),
]
SHAPE = {shape.name: shape for shape in SHAPES}


def time_order(events: Sequence[Known], ids: Iterable[int], newest_first: bool) -> list[int]:
    """`ids` in answer order: by event time, ties by id. A plain-text event's time is
    its receive time: during the test run, after every corpus time, and in id
    order (events are received in id order)."""

    def key(i: int) -> tuple[float, int]:
        ts = events[i - 1].ts
        return (float("inf") if ts is None else ts, i)

    return sorted(ids, key=key, reverse=newest_first)


def expected(shape: Shape, events: Sequence[Known], ids: Iterable[int]) -> tuple[int, list[int]]:
    """The brute-force answer over the events with `ids` (1-based): FOUND and row ids."""
    matched = [i for i in ids if shape.pred(events[i - 1])]
    rows = time_order(events, matched, shape.order == "desc")
    return len(matched), rows[: shape.limit]
