"""The queries bench/query times on each corpus, and the ripgrep command beside each.

Every corpus gets the same kinds of query: counts of a common keyword and of
three regexes (the store's count must stay within 1.0x of ripgrep's), lookups
of one value (a rare keyword, a `request_id=`, a trace id: at least 10x faster
than ripgrep), the level and time filters and the newest 100 of a keyword.

The looked-up values are picked from the corpus file itself, deterministically:
the first match of a pattern at a fixed fraction of the file (so the same file
gives the same queries). The default corpus (and the other seed-style ones) has
no `trace_id`: its trace-like id is the `Correlation ID:` of the Python
tracebacks, which the server keeps as the field `correlation_id`; the rare
keyword is another traceback's correlation id. In `--corpus frequent` the rare
keyword is the trace id of another request, as a keyword.

The regexes follow what each corpus holds: the frequent corpus has nginx access
lines with 5xx statuses and `took Nms` latencies, the default one gateway lines
`GET /api/v1/orders/N 200` and `duration_ms=N`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Target = tuple[str, Callable[[dict[str, Any]], bool]]  # text, test of a result row
RG_X1: Target = ("<=1.0x rg", lambda r: r["ratio"] <= 1.0)
FASTER_10: Target = (">=10x faster", lambda r: r["ratio"] <= 0.1)
UNDER_20MS: Target = ("<20 ms", lambda r: r["median_ms"] < 20)

REGEX = "(timeout|refused).*user-7[0-9]{3}"
_WINDOW = 4 << 20  # bytes read at a fraction of the file to find a value


@dataclass(frozen=True)
class Profile:
    """What a corpus holds: its ERROR forms, regexes and where its ids are."""

    # The forms an ERROR-level event takes, one line per event (rg's count = events).
    level_rg: str
    regexes: tuple[tuple[str, str], ...]  # (row name, pattern) besides REGEX
    request_id: bytes  # a pattern whose group 1 is a request id value
    trace_field: str  # the field holding the trace-like id
    trace_id: bytes  # a pattern whose group 1 is such an id


SEED_STYLE = Profile(
    # simulator `[ERROR] `, Python-style and plain `ERROR: `, JSON, logfmt, syslog <11>
    level_rg=r'\[ERROR\] |ERROR: |"level":"error"|level=error|<11>',
    regexes=(
        ("regex status+path", "(GET|POST) /api/v1/orders/[0-9]+ [245][0-9]{2} "),
        ("regex slow duration", "duration_ms=([5-9][0-9]{2}|[0-9]{4,})"),
    ),
    request_id=rb"request_id=(req-[0-9]+)",
    trace_field="correlation_id",
    trace_id=rb"Correlation ID: ([0-9a-f-]+)",
)
FREQUENT = Profile(
    level_rg=r'level=ERROR|"level":"error"',
    regexes=(
        ("regex 5xx on path", '"(GET|POST) /api/v1/checkout[^"]*" 5[0-9]{2} '),
        ("regex took >=1s", "took [0-9]{4,}ms"),
    ),
    request_id=rb"request_id=(req-[0-9]{8})",
    trace_field="trace_id",
    trace_id=rb"trace_id=([0-9a-f]{32})",
)


def profile(corpus: str) -> Profile:
    return FREQUENT if corpus == "frequent" else SEED_STYLE


def pick(path: Path, fraction: float, pattern: bytes) -> str | None:
    """The first value of `pattern` (group 1) from `fraction` of the file on, else from
    its start; None if the file has none."""
    size = path.stat().st_size
    rx = re.compile(pattern)
    with path.open("rb") as f:
        for start in (int(size * fraction), 0):
            f.seek(start)
            data = f.read(_WINDOW)
            nl = data.find(b"\n") + 1 if start else 0  # from a line start
            m = rx.search(data, nl)
            if m is not None:
                return m[1].decode()
    return None


def rg_literal(value: str) -> str:
    """`value` as an rg regex matching it literally (ids: `-` needs no escape)."""
    return re.escape(value).replace("\\-", "-")


def quoted(pattern: str) -> str:
    """A query parameter value: single quotes keep it as it is (query/parser.py)."""
    if "'" not in pattern:
        return f"'{pattern}'"
    return '"' + pattern.replace("\\", "\\\\").replace('"', '\\"') + '"'


# (row name, query parameters, rg pattern or "@row name" whose rg time is the
# reference, target)
Row = tuple[str, str, str, Target]


def queries(corpus: str, path: Path, window: tuple[float, float]) -> tuple[list[Row], list[str]]:
    """The rows to time on this corpus file, and notes on rows left out."""
    p = profile(corpus)
    t_from, t_to = window
    rows: list[Row] = [
        ("keyword count", "keyword=timeout limit=1", "timeout", RG_X1),
        ("regex count", f"regex={quoted(REGEX)} limit=1", REGEX, RG_X1),
    ]
    rows += [(name, f"regex={quoted(rx)} limit=1", rx, RG_X1) for name, rx in p.regexes]
    notes: list[str] = []
    rare = pick(path, 1 / 3, p.trace_id)
    rid = pick(path, 1 / 2, p.request_id)
    trace = pick(path, 2 / 3, p.trace_id)
    if rare is not None:
        rows.append(("rare keyword", f"keyword={rare} limit=100", rg_literal(rare), FASTER_10))
    else:
        notes.append(f"no rare keyword: nothing matches {p.trace_id.decode()}")
    if rid is not None:
        rg = rg_literal(rid) + r"\b"
        rows.append(("request_id lookup", f"request_id={rid} limit=100", rg, FASTER_10))
    else:
        notes.append(f"no request_id lookup: nothing matches {p.request_id.decode()}")
    if trace is not None:
        name = f"{p.trace_field} lookup"
        rows.append((name, f"{p.trace_field}={trace} limit=100", rg_literal(trace), FASTER_10))
    else:
        notes.append(f"no {p.trace_field} lookup: nothing matches {p.trace_id.decode()}")
    level = "level=ERROR count"
    rows += [
        (level, "level=ERROR limit=1", p.level_rg, FASTER_10),
        (
            "ERROR in 1 h",
            f"level=ERROR time_from={t_from} time_to={t_to} limit=1",
            "@" + level,
            FASTER_10,
        ),
        # max_count=100 is query.max_count's default: a plain QUERY on a default server
        # (the bench's server counts exactly for the other queries)
        (
            "newest 100 timeout",
            "keyword=timeout limit=100 max_count=100",
            "@keyword count",
            UNDER_20MS,
        ),
    ]
    return rows, notes
