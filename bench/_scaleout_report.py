"""bench/scaleout's report: medians of the runs, the four tables, the JSON.

`Results` holds one corpus' runs: the reference loads (`RefRun`), the scale-out
loads by (nodes, writers) (`LoadRun`), the paced runs (`PacedRun`) and the
timed queries (`QueryRow`). `render` prints the tables; `saturation` names the
resource a run ran out of; `result_doc` is the JSON, every run included.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TypeVar

import _corpus
from _common import MB, aligned_table, fmt_1, fmt_2, fmt_int, host_info
from _ingest_report import git_rev
from _scaleout_procs import CpuUse
from _scaleout_queries import QueryRow
from _scaleout_run import LoadRun, PacedRun, RefRun

HEADING = "LogCaster scale-out: lines/s into PostgreSQL"
BUSY_PCT = 90.0  # the machine's CPUs this busy: CPU is what runs out
NEAR_PCT = 80.0  # ... nearly
ONE_CORE = 0.9  # one process this busy (of one core): it is the bottleneck
IOWAIT_PCT = 20.0
ROLES = ("nodes", "writers", "redis", "pg", "pg other", "bench")
R = TypeVar("R")


def med(runs: Sequence[R], get: Callable[[R], float | None]) -> float | None:
    known = [v for v in (get(r) for r in runs) if v is not None]
    return statistics.median(known) if known else None


def setup_name(nodes: int, writers: int) -> str:
    return f"{nodes} node{'s' if nodes > 1 else ''}, {writers} writer{'s' if writers > 1 else ''}"


def ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1000:,.0f}"


@dataclass
class Results:
    corpus: _corpus.CorpusInfo
    refs: list[RefRun] = field(default_factory=list)
    loads: dict[tuple[int, int], list[LoadRun]] = field(default_factory=dict)
    paced: list[PacedRun] = field(default_factory=list)
    queries: list[QueryRow] = field(default_factory=list)
    query_schema_events: int | None = None

    @property
    def ref_rate(self) -> float | None:
        return med(self.refs, lambda r: r.lines_per_s)


def saturation(cpu: CpuUse, ncpu: int) -> str:
    """Which resource ran out over a run, from its CPU figures: the machine's CPUs;
    else each writer's loop (the writer and its backend take turns: it waits for
    its COMMIT); else one process; else the disk."""
    roles = {k: v for k, v in cpu.by_role.items() if v > 0} | {"rest": cpu.rest_s}
    top = max(roles, key=lambda k: roles[k])
    share = 100.0 * roles[top] / cpu.machine_busy_s if cpu.machine_busy_s else 0.0
    if cpu.busy_pct >= BUSY_PCT:
        return f"CPU: {ncpu} cores {cpu.busy_pct:.0f}% busy, {top} {share:.0f}% of it"
    if cpu.writers and cpu.wall_s:
        core_s = cpu.writers * cpu.wall_s
        loop = (cpu.by_role.get("writers", 0.0) + cpu.by_role.get("pg", 0.0)) / core_s
        if loop >= ONE_CORE:
            pg = cpu.by_role.get("pg", 0.0) / core_s
            return (
                f"each writer's loop: writer + its backend {100 * loop:.0f}% of a core "
                f"(the backend {100 * pg:.0f}%)"
            )
    if cpu.busy_pct >= NEAR_PCT:
        return f"CPU nearly: {cpu.busy_pct:.0f}% busy, {top} {share:.0f}% of it"
    who, most = max(cpu.per_process.items(), key=lambda kv: kv[1], default=("-", 0.0))
    if cpu.wall_s and most / cpu.wall_s >= ONE_CORE:
        return f"one core: {who} at {100 * most / cpu.wall_s:.0f}%"
    if cpu.iowait_pct >= IOWAIT_PCT:
        return f"disk: iowait {cpu.iowait_pct:.0f}%"
    return f"none at {cpu.busy_pct:.0f}% CPU (waits: commits, round trips)"


def _median_cpu(cpus: Sequence[CpuUse]) -> CpuUse:
    """The run whose wall time is the median's (its figures belong together)."""
    ordered = sorted(cpus, key=lambda c: c.wall_s)
    return ordered[(len(ordered) - 1) // 2]


def load_table(res: Results, args: argparse.Namespace) -> list[str]:
    c = res.corpus
    rows: list[tuple[str, ...]] = [
        ("setup", "lines/s", "vs embedded", "seconds", "events/s",
         "queryable p50 ms", "p99 ms", "max ms", "duplicates"),
    ]  # fmt: skip
    ref = res.ref_rate
    rows.append(
        (
            "embedded store, 1 node",
            fmt_int(ref),
            "1.00" if ref else "-",
            fmt_2(med(res.refs, lambda r: r.seconds)),
            fmt_int(med(res.refs, lambda r: r.events / r.seconds)),
            "-", "-", "-", "-",
        )
    )  # fmt: skip
    for (n, w), runs in res.loads.items():
        rate = med(runs, lambda r: r.lines_per_s)
        rows.append(
            (
                setup_name(n, w),
                fmt_int(rate),
                fmt_2(rate / ref) if rate is not None and ref else "-",
                fmt_2(med(runs, lambda r: r.seconds)),
                fmt_int(med(runs, lambda r: r.events / r.seconds)),
                ms(med(runs, lambda r: r.latency.p50)),
                ms(med(runs, lambda r: r.latency.p99)),
                ms(med(runs, lambda r: r.latency.max)),
                fmt_int(med(runs, lambda r: r.duplicates)),
            )
        )
    received = med(res.refs, lambda r: r.received_lines_per_s)
    unindexed = med(res.refs, lambda r: r.unindexed)
    store = "on" if args.node_store else "off"
    return [
        f"{HEADING} against the embedded store ({c.corpus} corpus: {c.lines:,} lines, "
        f"{c.events:,} events, {c.nbytes / MB:,.1f} MB), median of {args.runs} runs",
        *aligned_table(rows),
        f"lines/s: the corpus' lines over the seconds from the first byte sent ({args.connections}"
        " TCP connections per node) to the poll at which the writers' "
        "logcaster_writer_events_total reached the events the nodes took (then SELECT "
        "count(*) agreed); embedded: `serve -P DIR` (store on) until its index stopped "
        f"moving (bench/query's rule; {fmt_int(received)} lines/s until received, "
        f"{fmt_int(unindexed)} events left in active.log's partial chunk). vs embedded: "
        "PostgreSQL's rate over the embedded one, same corpus, same run. queryable: "
        "written_at - received_at over every event (percentile_cont): under this full-speed "
        "load it is mostly the backlog waiting in Redis; the paced table has it below "
        f"capacity. Nodes: `serve -P DIR --publish`, their own store {store} "
        "(--node-store); writers: `logcaster writer`, each its own consumer.",
    ]


def cpu_table(res: Results, args: argparse.Namespace) -> list[str]:
    ncpu = os.cpu_count() or 1
    rows: list[tuple[str, ...]] = [
        ("setup", "wall s", "nodes", "writers", "redis", "pg", "pg other", "bench", "rest",
         "busy %", "iowait %", "saturates"),
    ]  # fmt: skip
    cases: list[tuple[str, CpuUse]] = []
    if res.refs:
        cases.append(("embedded store, 1 node", _median_cpu([r.cpu for r in res.refs])))
    for (n, w), runs in res.loads.items():
        cases.append((setup_name(n, w), _median_cpu([r.cpu for r in runs])))
    if res.paced:
        p = res.paced[0]
        cases.append(
            ("paced, " + setup_name(1, p.writers), _median_cpu([r.cpu for r in res.paced]))
        )
    for name, cpu in cases:
        rows.append(
            (
                name,
                fmt_2(cpu.wall_s),
                *(fmt_2(cpu.by_role.get(role)) for role in ROLES),
                fmt_2(cpu.rest_s),
                fmt_1(cpu.busy_pct),
                fmt_1(cpu.iowait_pct),
                saturation(cpu, ncpu),
            )
        )
    return [
        f"CPU seconds over each load (the median run's), {ncpu} CPUs: which resource saturates",
        *aligned_table(rows),
        "nodes: the ingest nodes and their children (the store's indexer); writers: the "
        "writer processes; pg: the PostgreSQL backends of the writers' connections "
        "(pg_stat_activity by application_name, /proc/PID/stat); pg other: every other "
        "postgres process (WAL writer, checkpointer, autovacuum, and other sessions'); "
        "bench: this process (senders, polling); rest: the machine's busy seconds "
        "(/proc/stat) not in those (short-lived processes, other work). busy %, iowait %: "
        f"of all {ncpu} CPUs over the wall time. saturates: CPU when the machine was "
        f">={BUSY_PCT:.0f}% busy; else each writer's loop when the writers and their "
        f"backends used >={100 * ONE_CORE:.0f}% of a core per writer (a writer waits for its "
        "backend's COMMIT, so the two take turns on one core's worth); else CPU nearly at "
        f">={NEAR_PCT:.0f}%; else one core when one process used >={100 * ONE_CORE:.0f}% of "
        f"one; else the disk at >={IOWAIT_PCT:.0f}% iowait.",
    ]


def paced_table(res: Results, args: argparse.Namespace) -> list[str]:
    if not res.paced:
        return []
    p = res.paced
    rows: list[tuple[str, ...]] = [
        ("setup", "lines/s asked", "lines/s sent", "events", "queryable p50 ms", "p99 ms",
         "max ms", "last byte to all in PG s"),
        (
            setup_name(1, p[0].writers),
            fmt_int(p[0].lines_per_s),
            fmt_int(med(p, lambda r: r.lines / r.send_s)),
            fmt_int(med(p, lambda r: r.events)),
            ms(med(p, lambda r: r.latency.p50)),
            ms(med(p, lambda r: r.latency.p99)),
            ms(med(p, lambda r: r.latency.max)),
            fmt_2(med(p, lambda r: r.lag_s)),
        ),
    ]  # fmt: skip
    return [
        f"Ingest to queryable below capacity: {p[0].lines_per_s:,.0f} lines/s for "
        f"{p[0].seconds:g} s over one connection, median of {len(p)} runs",
        *aligned_table(rows),
        "queryable: written_at - received_at over every event (the node's receipt of a "
        "batch to the writer's INSERT). The rate is --paced-rate, by default half the "
        "first setup's median rate above.",
    ]


def query_table(res: Results, args: argparse.Namespace) -> list[str]:
    if not res.queries:
        return []
    rows: list[tuple[str, ...]] = [
        ("query", "PG ms", "store ms", "rg ms", "PG/store", "PG/rg", "store/rg",
         "PG count", "store count", "rg count"),
    ]  # fmt: skip
    odd = []
    for q in res.queries:
        rows.append(
            (
                q.name,
                fmt_1(q.pg_median),
                fmt_1(q.store_median),
                fmt_1(q.rg_median),
                fmt_2(q.pg_median / q.store_median),
                fmt_2(q.pg_median / q.rg_median),
                fmt_2(q.store_median / q.rg_median),
                f"{q.pg_count:,}",
                f"{q.store_count:,}",
                fmt_int(q.rg_count),
            )
        )
        odd += [f"{q.name}: {o}" for o in q.odd]
    last = next(reversed(res.loads), None)
    where = setup_name(*last) if last else "-"
    return [
        f"bench/query's queries on PostgreSQL (`serve --history`) beside the embedded store "
        f"and ripgrep, median of {args.runs} warm runs",
        *aligned_table(rows),
        f"PG: a query node on the last run's schema ({where}, "
        f"{fmt_int(res.query_schema_events)} events); store: the last reference node "
        "(memory + store, as bench/query); each a client round trip on the query port "
        "(one warm-up). rg: `rg -c PATTERN` on the corpus file; 'ERROR in 1 h' is set beside "
        "level=ERROR's rg time and 'newest 100' beside keyword's (no rg equivalent). Counts: "
        "events for PG and the store, lines for rg.",
        *(f"note: {o}" for o in odd),
    ]


def render(res: Results, args: argparse.Namespace) -> str:
    parts = [load_table(res, args), cpu_table(res, args), paced_table(res, args)]
    parts.append(query_table(res, args))
    tail = [
        f"load average {os.getloadavg()[0]:.2f} at the end; every process on this machine's "
        f"{os.cpu_count()} CPUs: nodes, writers, redis-server, PostgreSQL and the senders "
        "compete for them."
    ]
    return "\n\n".join("\n".join(p) for p in [*parts, tail] if p)


def result_doc(res: Results, settings: dict[str, object]) -> dict[str, object]:
    def rounded(x: float | None, digits: int = 1) -> float | None:
        return None if x is None else round(x, digits)

    c = res.corpus
    medians = {
        f"{n}x{w}": {
            "nodes": n,
            "writers": w,
            "lines_per_s": rounded(med(runs, lambda r: r.lines_per_s)),
            "vs_embedded": rounded(
                (med(runs, lambda r: r.lines_per_s) or 0) / res.ref_rate if res.ref_rate else None,
                3,
            ),
            "queryable_p50_s": rounded(med(runs, lambda r: r.latency.p50), 4),
            "queryable_p99_s": rounded(med(runs, lambda r: r.latency.p99), 4),
            "saturates": saturation(_median_cpu([r.cpu for r in runs]), os.cpu_count() or 1),
        }
        for (n, w), runs in res.loads.items()
    }
    return {
        "bench": "scaleout",
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git": git_rev(),
        "settings": settings,
        "host": host_info(),
        "corpus": {"name": c.corpus, "lines": c.lines, "events": c.events, "bytes": c.nbytes},
        "embedded_lines_per_s": rounded(res.ref_rate),
        "medians": medians,
        "queries": [
            {
                "query": q.name,
                "pg_ms": rounded(q.pg_median, 2),
                "store_ms": rounded(q.store_median, 2),
                "rg_ms": rounded(q.rg_median, 2),
                "pg_count": q.pg_count,
                "store_count": q.store_count,
                "rg_count": q.rg_count,
            }
            for q in res.queries
        ],
        "runs": {
            "embedded": [asdict(r) for r in res.refs],
            "scaleout": {f"{n}x{w}": [asdict(r) for r in rs] for (n, w), rs in res.loads.items()},
            "paced": [asdict(r) for r in res.paced],
        },
    }
