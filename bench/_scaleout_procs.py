"""bench/scaleout's processes: a private redis-server, PostgreSQL schemas, LogCaster
ingest nodes, writers and query nodes, and the CPU each of them used.

- `RedisServer`: `redis-server` on a free loopback port of its own (AOF on,
  `appendfsync everysec`, no RDB snapshots, a directory of its own): the shared
  Redis on 6379 is never touched. Emptied (FLUSHALL) between runs.
- `PgAdmin`: one autocommit connection to the base URL that makes a schema per
  run (`lcb_<hex>`) and drops it after; `url` is the URL that works in one, with
  an `application_name` so that the bench finds its processes' backends in
  `pg_stat_activity`.
- `start_serve`, `start_writer`: `logcaster serve` / `logcaster writer` with every
  port 0 (the bound ones read from the `ready` line / the writer's "metrics on"
  line), their output in bench/out, LOGCASTER_* of the caller not passed on.
- `CpuSample`: user+system seconds of each role's processes (a node's indexer
  child counts as the node's), every PostgreSQL process, this process, and the
  machine's /proc/stat, at one moment; `cpu_delta` subtracts two.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import secrets
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis
from psycopg import sql

from _common import (
    CHILDREN,
    OUT_DIR,
    READY_TIMEOUT_S,
    BenchError,
    cpu_seconds,
    free_ports,
    log,
    tail,
)
from _ingest_run import _ready_ports
from logcaster.scaleout.schema import migrate, set_keyword_index

APP = "lcbench"  # application_name prefix of the bench's processes' PostgreSQL connections
STOP_TIMEOUT_S = 60.0
SERVER_ENV = {  # exact counts and room for full scans, as bench/query's server
    "LOGCASTER_QUERY__MAX_COUNT": "100000000",
    "LOGCASTER_QUERY__TIMEOUT": "60",
    "LOGCASTER_QUERY__MAX_SCAN": "1000000000",
}
_METRICS_LINE = re.compile(rb"metrics on http://[^:/]+:(\d+)/metrics")
_EVENTS = re.compile(rb"^logcaster_writer_events_total (\S+)$", re.M)
_SAID = re.compile(r'"level":"(warning|error|critical)"')
_DUPLICATES = re.compile(rb"^logcaster_writer_duplicate_events_total (\S+)$", re.M)


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGCASTER_")}
    return env | (extra or {})


@dataclass
class Proc:
    """A process the bench started: its log, what it is, the ports it bound."""

    proc: subprocess.Popen[bytes]
    log_path: Path
    what: str
    ports: dict[str, int] = field(default_factory=dict)
    data_dir: Path | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise BenchError(
                f"{self.what} exited with status {self.proc.returncode} during the run"
            )

    def stop(self, warnings: list[str]) -> int | None:
        """SIGTERM and wait: its exit status (None: it did not exit in time)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            warnings.append(f"{self.what} did not exit within {STOP_TIMEOUT_S:g} s of SIGTERM")
            return None
        if code != 0:
            warnings.append(f"{self.what} exited with status {code} after SIGTERM")
        return code

    def finish(self, failed: bool) -> None:
        """Kill what is left; keep the log of one that failed (and say so), else delete it."""
        CHILDREN.kill(self.proc)
        if self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        if failed and tail(self.log_path):
            log(f"{self.what}'s log ({self.log_path}), last lines:\n{tail(self.log_path)}")
            return
        said = [x for x in tail(self.log_path, 10**6).splitlines() if _SAID.search(x)]
        if said:  # its warnings and errors (it logs at --log-level warning)
            log(f"{self.what} said ({self.log_path}):\n" + "\n".join(said[-10:]))
        elif self.proc.returncode == 0 or not tail(self.log_path):
            self.log_path.unlink(missing_ok=True)


def _spawn(
    cmd: Sequence[str], name: str, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], Path]:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    log_path = OUT_DIR / f"scaleout-{name}-{os.getpid()}.log"
    with log_path.open("wb") as f:
        proc = CHILDREN.spawn(cmd, stdin=subprocess.DEVNULL, stdout=f, stderr=f, env=env)
    return proc, log_path


def start_serve(
    server_cmd: Sequence[str], name: str, args: Sequence[str], env: dict[str, str] | None = None
) -> Proc:
    """`logcaster serve` on ports of its own with `args`; not waited for (`wait_ready`)."""
    cmd = [*server_cmd, "serve", "--port", "0", "--query-port", "0", "--http-port", "0"]
    cmd += ["--log-level", "warning", *args]
    proc, log_path = _spawn(cmd, name, clean_env(SERVER_ENV | (env or {})))
    data_dir = Path(args[args.index("-P") + 1]) if "-P" in args else None
    return Proc(proc, log_path, f"logcaster {name}", data_dir=data_dir)


def wait_ready(node: Proc) -> None:
    """The ports of a `start_serve` server, from its `ready` line."""
    try:
        node.ports = _ready_ports(node.proc, node.log_path)
    except BenchError as exc:
        raise BenchError(f"{node.what}: {exc}") from None


def start_writer(server_cmd: Sequence[str], name: str, redis_url: str, pg_url: str) -> Proc:
    """`logcaster writer` with /metrics on a port of its own; not waited for (`wait_metrics`)."""
    cmd = [*server_cmd, "writer", "--redis", redis_url, "--postgres", pg_url]
    cmd += ["--consumer", name, "--metrics-port", "0", "--log-level", "warning"]
    proc, log_path = _spawn(cmd, name, clean_env())
    return Proc(proc, log_path, f"logcaster writer {name}")


def wait_metrics(writer: Proc) -> None:
    """The writer's metrics port, from its "metrics on http://…" line."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        m = _METRICS_LINE.search(writer.log_path.read_bytes())
        if m is not None:
            writer.ports["metrics"] = int(m[1])
            return
        writer.check()
        if time.monotonic() > deadline:
            raise BenchError(f"{writer.what} named no metrics port within {READY_TIMEOUT_S:g} s")
        time.sleep(0.02)


def writer_counts(writer: Proc) -> tuple[int, int]:
    """(events inserted, duplicates) from the writer's /metrics."""
    url = f"http://127.0.0.1:{writer.ports['metrics']}/metrics"
    with urllib.request.urlopen(url, timeout=10) as r:
        body: bytes = r.read()
    counts = [m[1] for m in (_EVENTS.search(body), _DUPLICATES.search(body)) if m is not None]
    if len(counts) != 2:
        raise BenchError(f"{writer.what}'s /metrics has no logcaster_writer_events_total")
    return int(float(counts[0])), int(float(counts[1]))


# --------------------------------------------------------------------------- Redis


class RedisServer:
    """A private redis-server (see the module docstring)."""

    def __init__(self, command: str, directory: Path) -> None:
        self.command = command
        self.dir = directory
        self.port = 0
        self.proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_ports(1)[0]
        cmd = [
            self.command, "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
            "--dir", str(self.dir), "--daemonize", "no", "--protected-mode", "no",
        ]  # fmt: skip
        proc, log_path = _spawn(cmd, "redis", clean_env())
        self.proc = Proc(proc, log_path, "redis-server")
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            self.proc.check()
            with contextlib.suppress(redis.exceptions.RedisError, OSError), self.client() as r:
                if r.ping():
                    return
            if time.monotonic() > deadline:
                raise BenchError(f"redis-server did not answer PING on port {self.port}")
            time.sleep(0.05)

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=30)

    def flush(self) -> None:
        """Empty it between runs (the stream and its consumer group); a redis-server
        that is gone is said so by the run that saw it go."""
        with contextlib.suppress(redis.exceptions.RedisError, OSError), self.client() as r:
            r.flushall()

    def close(self) -> None:
        if self.proc is not None:
            warnings: list[str] = []
            self.proc.stop(warnings)
            self.proc.finish(failed=bool(warnings))
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------- PostgreSQL


class PgAdmin:
    """Schemas of the bench's runs (see the module docstring)."""

    def __init__(self, base: str, *, keyword_index: bool = True) -> None:
        self.base = base
        self.keyword_index = keyword_index  # off: migrated here without the pg_trgm index
        self.schemas: set[str] = set()
        try:
            self.conn = psycopg.connect(base, autocommit=True, connect_timeout=5)
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BenchError(f"PostgreSQL is not reachable at {base}: {first}") from None
        self.conn.execute("SET lock_timeout = '20s'")

    def create_schema(self) -> str:
        name = "lcb_" + secrets.token_hex(4)
        self.conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        self.schemas.add(name)
        if not self.keyword_index:
            with self.connect(name) as conn:
                migrate(conn, 2)
                set_keyword_index(conn, False)
        return name

    def url(self, schema: str, role: str) -> str:
        sep = "&" if "?" in self.base else "?"
        return f"{self.base}{sep}options=-csearch_path%3D{schema}&application_name={APP}-{role}"

    def connect(self, schema: str) -> psycopg.Connection:
        return psycopg.connect(self.url(schema, "bench"), autocommit=True, connect_timeout=5)

    def backends(self, role: str) -> list[int]:
        """The pids of the backends serving connections named `role` (see `url`)."""
        rows = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (f"{APP}-{role}",)
        ).fetchall()
        return [int(r[0]) for r in rows]

    def drop(self, schema: str) -> None:
        self.conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )
        self.schemas.discard(schema)

    def close(self) -> list[str]:
        """Drop every schema left; return what could not be dropped."""
        problems = []
        for schema in sorted(self.schemas):
            try:
                self.drop(schema)
            except psycopg.Error as exc:
                problems.append(f"schema {schema} not dropped: {str(exc).strip()[:200]}")
        with contextlib.suppress(psycopg.Error):
            self.conn.close()
        return problems


# --------------------------------------------------------------------------- CPU


def process_tree(pid: int) -> list[int]:
    """`pid` and every descendant of it alive now."""
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
    return out


def postgres_pids() -> list[int]:
    """Every process named `postgres` on the machine (the server, its auxiliary
    processes, autovacuum and every session's backend)."""
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry.name}/stat", "rb") as f:
                if f.read(64).split(b"(", 1)[1].startswith(b"postgres)"):
                    pids.append(int(entry.name))
    return pids


def machine_ticks() -> tuple[int, int, int]:
    """(busy, iowait, all) clock ticks of every CPU since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    busy = user + nice + system + irq + softirq + steal
    return busy, iowait, busy + idle + iowait


def process_name(pid: int) -> str:
    """A short name: `logcaster serve`, `logcaster writer`, the module after `-m`, or
    the program (PostgreSQL's processes: their title's last words)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [a.decode(errors="replace") for a in argv if a]
    if not words:
        return "?"
    if "-m" in words[:-1]:
        return words[words.index("-m") + 1].rpartition(".")[2]
    prog = words[0].rpartition("/")[2]
    if prog == "logcaster" and len(words) > 1:
        return f"logcaster {words[1]}"
    if prog.startswith("postgres:"):
        return " ".join(words[0].split()[-2:])
    return prog


@dataclass
class CpuSample:
    at: float  # time.perf_counter()
    by_role: dict[str, dict[int, float]]  # role -> pid -> CPU seconds so far
    ticks: tuple[int, int, int]
    bench: float  # this process' CPU seconds (its sender threads, its polling)
    names: dict[int, str] = field(default_factory=dict)


def cpu_sample(roles: dict[str, list[int]], pg_ours: Sequence[int] = ()) -> CpuSample:
    """CPU seconds now of each role's processes and their descendants; with
    `pg_ours` also "pg" (those backends) and "pg other" (every other postgres process)."""
    by_role: dict[str, dict[int, float]] = {}
    for role, pids in roles.items():
        found = by_role.setdefault(role, {})
        for pid in (p for top in pids for p in process_tree(top)):
            cpu = cpu_seconds(pid)
            if cpu is not None:
                found[pid] = cpu
    if pg_ours:
        ours = set(pg_ours)
        every = {p: c for p in postgres_pids() if (c := cpu_seconds(p)) is not None}
        by_role["pg"] = {p: c for p, c in every.items() if p in ours}
        by_role["pg other"] = {p: c for p, c in every.items() if p not in ours}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    names = {pid: process_name(pid) for role in roles for pid in by_role[role]}
    names |= {pid: "postgres backend" for pid in by_role.get("pg", {})}
    return CpuSample(
        time.perf_counter(), by_role, machine_ticks(), usage.ru_utime + usage.ru_stime, names
    )


@dataclass
class CpuUse:
    """CPU over a span: seconds by role, and the machine's busy and iowait shares."""

    wall_s: float
    by_role: dict[str, float]
    machine_busy_s: float  # every CPU's busy seconds, anyone's
    busy_pct: float  # of every CPU over the span
    iowait_pct: float
    per_process: dict[str, float]  # "NAME PID" -> CPU seconds (the roles' but "pg other")
    writers: int = 0  # writer processes (each with its backend: a serial loop)

    @property
    def rest_s(self) -> float:
        """Busy seconds of processes not in a role (other work on the machine)."""
        return max(0.0, self.machine_busy_s - sum(self.by_role.values()))


def cpu_delta(start: CpuSample, end: CpuSample) -> CpuUse:
    """What happened between two samples. A process that started in between counts
    whole; one that ended in between is missed (the machine's figures have it)."""
    per_pid = {
        role: {pid: cpu - start.by_role.get(role, {}).get(pid, 0.0) for pid, cpu in pids.items()}
        for role, pids in end.by_role.items()
    }
    by_role = {role: sum(pids.values()) for role, pids in per_pid.items()}
    by_role["bench"] = end.bench - start.bench
    per_process = {
        f"{end.names.get(pid, role)} {pid}": s
        for role, pids in per_pid.items()
        if role != "pg other"
        for pid, s in pids.items()
    }
    busy, iowait, total = (b - a for a, b in zip(start.ticks, end.ticks, strict=True))
    tick = os.sysconf("SC_CLK_TCK")
    return CpuUse(
        wall_s=end.at - start.at,
        by_role=by_role,
        machine_busy_s=busy / tick,
        busy_pct=100.0 * busy / total if total else 0.0,
        iowait_pct=100.0 * iowait / total if total else 0.0,
        per_process=per_process,
        writers=len(end.by_role.get("writers", {})),
    )
