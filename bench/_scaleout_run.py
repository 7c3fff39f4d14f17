"""bench/scaleout's runs: one load into PostgreSQL through N ingest nodes and W
writers, the same load into one embedded store (the reference), and a paced
load (ingest-to-queryable below capacity).

A scale-out run (`run_scaleout`): a fresh schema, W writers (`logcaster writer
--consumer wI --metrics-port 0`, which migrate the schema as they start), N
ingest nodes (`serve -P DIR --publish redis://…`, the store on or off as
--node-store says), all ready (ports read, every writer's backend in
pg_stat_activity, the schema at version 2) before the clock. The corpus is cut
at event starts into `connections` parts per node, sent at once, one TCP
connection each, spread over the nodes. The clock runs from just before the
first byte to the poll (every POLL_S) at which the writers' `logcaster_writer_
events_total` (counted after each COMMIT) reaches the events the nodes took:
their STATS Total once every connection ended and every event was delivered
(a multi-line event is one). Then, untimed: `SELECT count(*)` must agree, and
`percentile_cont` of `written_at - received_at` gives the ingest-to-queryable
latency of every event. CPU seconds of every process, the PostgreSQL backends
of the writers' connections and every other postgres process are sampled at
the two ends (bench/_scaleout_procs.py).

The reference (`run_reference`): `serve -P DIR` with the store on, the same
corpus over `connections` connections, timed as bench/query times its load:
until STATS shows every event received, and until StoreIndexed stopped moving
at Total (active.log's last partial chunk may stay unindexed by design: then
to its last move, SETTLE_S later).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

import _corpus
from _common import BenchError, log, send_parts_to
from _ingest_run import _all_in
from _irc_paced import paced_payload, send_paced
from _query_port import parse_stats, query, stat_int, total_of
from _scaleout_procs import (
    CpuSample,
    CpuUse,
    PgAdmin,
    Proc,
    RedisServer,
    cpu_delta,
    cpu_sample,
    start_serve,
    start_writer,
    wait_metrics,
    wait_ready,
    writer_counts,
)

POLL_S = 0.05  # writers' /metrics and the nodes' STATS
STABLE_S = 2.0  # every connection ended, Total unchanged this long: it is final
STALL_S = 60.0  # nothing moved this long: give up
SETTLE_S = 5.0  # the reference: all received, StoreIndexed still this long: done
READY_S = 30.0  # writers connected and the schema migrated


@dataclass
class Ctx:
    """What every run needs."""

    server_cmd: list[str]
    redis: RedisServer
    pg: PgAdmin
    connections: int  # TCP connections per node
    node_store: bool  # the ingest nodes run the store too (-P turns it on)
    work_dir: Path  # where the nodes' data directories go


@dataclass
class Latency:
    """Ingest to queryable, `written_at - received_at` over every event (seconds)."""

    p50: float | None
    p99: float | None
    max: float | None


@dataclass
class LoadRun:
    nodes: int
    writers: int
    seconds: float  # first byte to every event in PostgreSQL
    lines_per_s: float
    events: int
    sent_s: float
    latency: Latency
    cpu: CpuUse
    duplicates: int
    warnings: list[str] = field(default_factory=list)


@dataclass
class RefRun:
    seconds: float  # first byte to the store's last index move
    lines_per_s: float
    received_s: float
    received_lines_per_s: float
    events: int
    unindexed: int
    cpu: CpuUse
    warnings: list[str] = field(default_factory=list)


@dataclass
class PacedRun:
    nodes: int
    writers: int
    lines_per_s: float  # the rate asked for
    seconds: float  # planned
    send_s: float  # as sent (longer: the node held the sender up)
    lines: int
    events: int
    lag_s: float  # last byte sent to every event in PostgreSQL
    latency: Latency
    cpu: CpuUse
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- the cluster


@dataclass
class Cluster:
    """N ingest nodes and W writers on one schema (see the module docstring)."""

    ctx: Ctx
    schema: str
    nodes: list[Proc] = field(default_factory=list)
    writers: list[Proc] = field(default_factory=list)

    @property
    def writer_role(self) -> str:
        return f"w-{self.schema}"

    def check(self) -> None:
        for p in (*self.nodes, *self.writers):
            p.check()
        if self.ctx.redis.proc is not None:
            self.ctx.redis.proc.check()

    def roles(self) -> dict[str, list[int]]:
        redis = self.ctx.redis.proc
        return {
            "nodes": [n.pid for n in self.nodes],
            "writers": [w.pid for w in self.writers],
            "redis": [] if redis is None else [redis.pid],
        }

    def stop(self, warnings: list[str]) -> None:
        for p in (*self.writers, *self.nodes):
            p.stop(warnings)

    def finish(self, failed: bool) -> None:
        for p in (*self.writers, *self.nodes):
            p.finish(failed)


def start_cluster(ctx: Ctx, nodes: int, writers: int) -> Cluster:
    cluster = Cluster(ctx, ctx.pg.create_schema())
    try:
        url = ctx.pg.url(cluster.schema, cluster.writer_role)
        for i in range(writers):
            cluster.writers.append(start_writer(ctx.server_cmd, f"w{i + 1}", ctx.redis.url, url))
        env = {"LOGCASTER_STORE__ENABLED": "auto" if ctx.node_store else "false"}
        for i in range(nodes):
            data = ctx.work_dir / f"node{i + 1}-{cluster.schema}"
            args = ["-P", str(data), "--publish", ctx.redis.url]
            cluster.nodes.append(start_serve(ctx.server_cmd, f"node{i + 1}", args, env))
        for node in cluster.nodes:
            wait_ready(node)
        for w in cluster.writers:
            wait_metrics(w)
        _wait_writers_connected(cluster, writers)
    except BaseException:
        cluster.finish(failed=True)
        _drop(ctx.pg, cluster.schema, [])
        raise
    return cluster


def _wait_writers_connected(cluster: Cluster, writers: int) -> None:
    """Every writer holds its PostgreSQL connection and the schema is migrated."""
    deadline = time.monotonic() + READY_S
    with cluster.ctx.pg.connect(cluster.schema) as conn:
        while True:
            cluster.check()
            connected = len(cluster.ctx.pg.backends(cluster.writer_role))
            version = 0
            if conn.execute("SELECT to_regclass('logcaster_schema')").fetchone() != (None,):
                row = conn.execute("SELECT max(version) FROM logcaster_schema").fetchone()
                version = int(row[0]) if row is not None and row[0] is not None else 0
            if connected >= writers and version >= 2:
                return
            if time.monotonic() > deadline:
                raise BenchError(
                    f"writers not ready within {READY_S:g} s: {connected} of {writers} "
                    f"connected to PostgreSQL, schema version {version}"
                )
            time.sleep(0.05)


def _drop(pg: PgAdmin, schema: str, warnings: list[str]) -> None:
    try:
        pg.drop(schema)
    except psycopg.Error as exc:
        warnings.append(f"schema {schema} not dropped: {str(exc).strip()[:200]}")


def wait_written(cluster: Cluster, min_events: int, warnings: list[str]) -> tuple[int, float, int]:
    """Poll until the writers inserted every event the nodes took: (the events, when,
    duplicates). The nodes' count is final once every connection ended, every event
    is delivered, and it reached `min_events` or stopped changing for STABLE_S (a
    connection the node has not yet seen makes Clients 0 too: 0 only for senders
    connected all along)."""
    expected: int | None = None
    last: tuple[int, int] = (-1, -1)
    changed = total_changed = time.perf_counter()
    last_total = -1
    while True:
        cluster.check()
        now = time.perf_counter()
        if expected is None:
            stats = [parse_stats(query(n.ports["query"], "STATS")) for n in cluster.nodes]
            total = sum(total_of(s) for s in stats)
            if total != last_total:
                last_total, total_changed = total, now
            stable = now - total_changed > STABLE_S
            if all(_all_in(s) for s in stats) and (stable or total >= min_events):
                expected = total
                dropped = sum(stat_int(s, "Dropped") or 0 for s in stats)
                if dropped:
                    warnings.append(f"the nodes dropped {dropped:,} events")
        counts = [writer_counts(w) for w in cluster.writers]
        written, dups = sum(c[0] for c in counts), sum(c[1] for c in counts)
        if (written, last_total) != last:
            last, changed = (written, last_total), now
        if expected is not None and written >= expected:
            return expected, time.perf_counter(), dups  # when the answer was in
        if now - changed > STALL_S:
            raise BenchError(
                f"stalled {STALL_S:g} s: {written:,} events in PostgreSQL, the nodes took "
                f"{last_total:,}" + ("" if expected is None else " (final)")
            )
        time.sleep(POLL_S)


def pg_latency(pg: PgAdmin, schema: str) -> tuple[int, Latency]:
    """(rows in events, the ingest-to-queryable percentiles)."""
    with pg.connect(schema) as conn:
        row = conn.execute(
            "SELECT count(*), percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP"
            " (ORDER BY written_at - received_at), max(written_at - received_at) FROM events"
        ).fetchone()
    if row is None:
        raise BenchError("SELECT count(*) FROM events returned nothing")
    p = row[1] or [None, None]
    return int(row[0]), Latency(p[0], p[1], row[2])


# --------------------------------------------------------------------------- runs


def run_scaleout(
    ctx: Ctx, corpus: _corpus.CorpusInfo, data: memoryview, nodes: int, writers: int, keep: bool
) -> tuple[LoadRun, str | None]:
    """One load through `nodes` nodes and `writers` writers (the module docstring);
    with `keep` the schema stays (its name is returned) for the queries."""
    cluster = start_cluster(ctx, nodes, writers)
    warnings: list[str] = []
    failed = True
    try:
        parts = _corpus.split(data, corpus.split_points, ctx.connections * nodes)
        ports = [cluster.nodes[i % nodes].ports["ingest"] for i in range(len(parts))]
        pg_ours = ctx.pg.backends(cluster.writer_role)
        c0 = cpu_sample(cluster.roles(), pg_ours)
        sent = send_parts_to(ports, parts, cluster.check)
        events, end, dups = wait_written(cluster, corpus.events, warnings)
        cpu = cpu_delta(c0, cpu_sample(cluster.roles(), pg_ours))
        count, latency = pg_latency(ctx.pg, cluster.schema)
        _check_counts(corpus, events, count, warnings)
        cluster.stop(warnings)
        failed = False
        seconds = end - sent.t0
        run = LoadRun(
            nodes, writers, seconds, corpus.lines / seconds, events, sent.sent_s, latency,
            cpu, dups, warnings,
        )  # fmt: skip
        return run, cluster.schema if keep else None
    finally:
        cluster.finish(failed)
        if failed or not keep:
            _drop(ctx.pg, cluster.schema, warnings)
        ctx.redis.flush()


def _check_counts(corpus: _corpus.CorpusInfo, events: int, count: int, warnings: list[str]) -> None:
    if count != events:
        warnings.append(f"SELECT count(*) FROM events = {count:,}, the nodes took {events:,}")
    if events != corpus.events:
        warnings.append(f"the nodes counted {events:,} events, the corpus holds {corpus.events:,}")


def run_reference(
    ctx: Ctx, corpus: _corpus.CorpusInfo, data: memoryview, keep_alive: bool
) -> tuple[RefRun, Proc | None]:
    """The embedded store's load (the module docstring); with `keep_alive` the server
    is left running (returned) for the queries."""
    data_dir = ctx.work_dir / f"reference-{secrets.token_hex(4)}"
    node = start_serve(ctx.server_cmd, "reference", ["-P", str(data_dir)])
    failed = True
    try:
        wait_ready(node)
        parts = _corpus.split(data, corpus.split_points, ctx.connections)
        roles = {"nodes": [node.pid]}
        c0 = cpu_sample(roles)
        sent = send_parts_to([node.ports["ingest"]] * len(parts), parts, node.check)
        run = _wait_indexed(node, corpus, sent.t0, c0, roles)
        if run.events != corpus.events:
            run.warnings.append(
                f"the server counted {run.events:,} events, the corpus holds {corpus.events:,}"
            )
        if not keep_alive:
            node.stop(run.warnings)
        failed = False
        return run, node if keep_alive else None
    finally:
        if failed or not keep_alive:
            node.finish(failed)


def _wait_indexed(
    node: Proc,
    corpus: _corpus.CorpusInfo,
    t0: float,
    c0: CpuSample,
    roles: dict[str, list[int]],
) -> RefRun:
    received = 0.0
    last: tuple[int, int] | None = None
    changed = indexed_at = done_changed = time.perf_counter()
    last_done = -1
    while True:
        node.check()
        stats = parse_stats(query(node.ports["query"], "STATS"))
        now = time.perf_counter()
        done, idx = total_of(stats), stat_int(stats, "StoreIndexed")
        if idx is None:
            raise BenchError(f"STATS without StoreIndexed (is the store on?): {stats}")
        if done != last_done:
            last_done, done_changed = done, now
        final = done >= corpus.events or now - done_changed > STABLE_S
        if not received and _all_in(stats) and final:
            received = (now if done >= corpus.events else done_changed) - t0
        if (done, idx) != last:
            last, changed, indexed_at = (done, idx), now, now
        total = stat_int(stats, "Total") or 0
        if received and (idx >= total or now - changed > SETTLE_S):
            cpu = cpu_delta(c0, cpu_sample(roles))
            warnings = []
            if stat_int(stats, "Dropped"):
                warnings.append(f"the server dropped events: {stats.get('Dropped')}")
            t = indexed_at - t0
            return RefRun(
                t, corpus.lines / t, received, corpus.lines / received, total, total - idx,
                cpu, warnings,
            )  # fmt: skip
        if now - changed > STALL_S:
            raise BenchError(f"the reference stalled {STALL_S:g} s at {stats}")
        time.sleep(0.01)


def run_paced(
    ctx: Ctx, raw: bytes, corpus: _corpus.CorpusInfo, writers: int, rate: float, seconds: float
) -> PacedRun:
    """`rate` lines/s for `seconds` over one connection to one node (the corpus,
    cycled when short), then until every event is in PostgreSQL."""
    cluster = start_cluster(ctx, 1, writers)
    warnings: list[str] = []
    failed = True
    try:
        payload = paced_payload(raw, max(1, int(rate * seconds * corpus.nbytes / corpus.lines)))
        pg_ours = ctx.pg.backends(cluster.writer_role)
        c0 = cpu_sample(cluster.roles(), pg_ours)
        sent = send_paced(cluster.nodes[0].ports["ingest"], payload, len(payload) / seconds,
                          cluster.check)  # fmt: skip
        events, end, _ = wait_written(cluster, 0, warnings)  # connected all along
        cpu = cpu_delta(c0, cpu_sample(cluster.roles(), pg_ours))
        count, latency = pg_latency(ctx.pg, cluster.schema)
        if count != events:
            warnings.append(f"SELECT count(*) FROM events = {count:,}, the node took {events:,}")
        cluster.stop(warnings)
        failed = False
        return PacedRun(
            1, writers, rate, seconds, sent.t_end - sent.t0, payload.count(b"\n"), events,
            end - sent.t_end, latency, cpu, warnings,
        )  # fmt: skip
    finally:
        cluster.finish(failed)
        _drop(ctx.pg, cluster.schema, warnings)
        ctx.redis.flush()


def log_warnings(what: str, warnings: Sequence[str], say: Callable[[str], None] = log) -> None:
    for w in warnings:
        say(f"warning ({what}): {w}")
