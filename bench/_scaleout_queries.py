"""bench/scaleout's queries: bench/query's set, timed against a query node reading
PostgreSQL (`serve --history URL`), beside the embedded store and ripgrep.

bench/query is a script (no module to import), so its set is mirrored here:
keyword, regex and level=ERROR counts, ERROR in a 1-hour window around the
corpus' middle, and the newest 100 `timeout` events (`max_count=100`, a plain
QUERY on a default server). Each is a client round trip on the query port
(connect, one line, read to EOF): one warm-up, then `runs` timed, median; the
store's and PostgreSQL's in turn, then `rg -c` on the corpus file as many times
(the window and the newest 100 have no rg equivalent: they are set beside the
level and keyword rg times, as in bench/query). Keep the two lists alike.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from _common import BenchError, log
from _query_port import query

RG_ENV = {**os.environ, "RIPGREP_CONFIG_PATH": ""}  # no user config: plain rg
REGEX = "(timeout|refused).*user-7[0-9]{3}"
LEVEL_RG = r'\[ERROR\] |ERROR: |"level":"error"|level=error|<11>'
FOUND = re.compile(r"FOUND: (\d+)(\+?) matches(.*)")
ISO = re.compile(rb"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?")
QUERY_TIMEOUT_S = 300.0


def hour_window(path: Path) -> tuple[float, float]:
    """A 1-hour window around the middle of the corpus' event times (bench/query's)."""
    with path.open("rb") as f:
        head = f.read(1 << 20)
        f.seek(max(0, path.stat().st_size - (1 << 20)))
        end = f.read()
    utc = [
        [dt.datetime.fromisoformat(m.decode() + "+00:00").timestamp() for m in ISO.findall(b)]
        for b in (head, end)
    ]
    mid = (min(utc[0]) + max(utc[1])) / 2
    return round(mid - 1800, 3), round(mid + 1800, 3)


def query_set(path: Path) -> list[tuple[str, str, str]]:
    """(name, QUERY parameters, rg pattern or "@i": row i's rg time), as bench/query's."""
    t_from, t_to = hour_window(path)
    return [
        ("keyword count", "keyword=timeout limit=1", "timeout"),
        ("regex count", f'regex="{REGEX}" limit=1', REGEX),
        ("level=ERROR count", "level=ERROR limit=1", LEVEL_RG),
        ("ERROR in 1 h", f"level=ERROR time_from={t_from} time_to={t_to} limit=1", "@2"),
        ("newest 100 timeout", "keyword=timeout limit=100 max_count=100", "@0"),
    ]


def found(command: str, reply: str) -> tuple[int, int]:
    """(count, rows) of a QUERY reply; an ERROR reply raises."""
    first, *rows = reply.splitlines() or [""]
    m = FOUND.fullmatch(first.strip())
    if m is None:
        raise BenchError(f"{command!r} answered {first[:300]!r}")
    return int(m[1]), len(rows)


def timed(fn: Callable[[], Any], runs: int) -> tuple[list[float], Any]:
    """Warm-up, then `runs` timed calls: (the times in ms, the last value)."""
    value = fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        value = fn()
        times.append((time.perf_counter() - start) * 1000)
    return times, value


def rg_count(rg: str, pattern: str, path: Path) -> int:
    done = subprocess.run([rg, "-c", pattern, str(path)], capture_output=True, env=RG_ENV)
    if done.returncode not in (0, 1):  # 1: no match
        raise BenchError(f"rg -c {pattern!r} failed: {done.stderr.decode(errors='replace')}")
    return int(done.stdout or 0)


@dataclass
class QueryRow:
    name: str
    command: str
    pg_count: int
    store_count: int
    pg_ms: list[float]
    store_ms: list[float]
    rg_ms: list[float]
    rg_pattern: str  # the pattern, or "rg time of <row>"
    rg_count: int | None
    odd: list[str] = field(default_factory=list)

    @property
    def pg_median(self) -> float:
        return statistics.median(self.pg_ms)

    @property
    def store_median(self) -> float:
        return statistics.median(self.store_ms)

    @property
    def rg_median(self) -> float:
        return statistics.median(self.rg_ms)


def time_queries(
    store_port: int, pg_port: int, corpus_path: Path, rg: str, runs: int
) -> list[QueryRow]:
    rows: list[QueryRow] = []
    for name, params, pattern in query_set(corpus_path):
        command = f"QUERY {params}"
        ask = partial(query, timeout=QUERY_TIMEOUT_S)
        store_ms, store_reply = timed(partial(ask, store_port, command), runs)
        pg_ms, pg_reply = timed(partial(ask, pg_port, command), runs)
        (store_n, store_rows), (pg_n, pg_rows) = (
            found(command, store_reply),
            found(command, pg_reply),
        )
        odd = []
        if store_n != pg_n:
            odd.append(f"counts differ: store {store_n:,}, PostgreSQL {pg_n:,}")
        if store_rows != pg_rows:
            odd.append(f"rows differ: store {store_rows}, PostgreSQL {pg_rows}")
        if pattern.startswith("@"):
            ref = rows[int(pattern[1:])]
            rg_ms, rg_n, rg_pattern = ref.rg_ms, None, f"rg time of {ref.name}"
        else:
            rg_ms, rg_n = timed(partial(rg_count, rg, pattern, corpus_path), runs)
            rg_pattern = pattern
        row = QueryRow(name, command, pg_n, store_n, pg_ms, store_ms, rg_ms, rg_pattern, rg_n, odd)
        rows.append(row)
        log(
            f"{name}: PostgreSQL {row.pg_median:.1f} ms, store {row.store_median:.1f} ms, "
            f"rg {row.rg_median:.1f} ms ({pg_n:,} / {store_n:,})"
        )
    return rows
