"""Real processes for scale-out's fault tests (tests/test_scaleout_faults.py).

A private `redis-server` per test (AOF on, `appendfsync always`, a free loopback
port, its own directory: the shared Redis on 6379 is never touched), ingest
nodes (`logcaster serve --publish`), writers (`logcaster writer`), a fresh
PostgreSQL schema, and sender threads that drive `LogCasterClient`s. Every
process is started in its own session and killed by its pid on exit.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest
import redis

from logcaster.client.connection import BufferFull, LogCasterClient
from logcaster.testing import ServerProcess, free_port, start_server

BASE = os.environ.get("LOGCASTER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_SERVER = os.environ.get("LOGCASTER_TEST_REDIS_SERVER", "/usr/bin/redis-server")
STREAM = "logcaster:events"
DEAD = "logcaster:events:dead"
GROUP = "writers"


def missing(why: str) -> NoReturn:
    """A dependency this test needs is missing: a failure under CI, else a skip."""
    if os.environ.get("CI") == "true":
        pytest.fail(why)
    pytest.skip(why)


def wait_until(what: str, ok: Callable[[], bool], timeout: float, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)


def _reap(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL one child we started (in its own session: the group is just it), wait."""
    if proc is not None and proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(15)


# -- Redis ---------------------------------------------------------------------------


class RedisServer:
    """A private redis-server: AOF on (unless `appendonly="no"`), fsync on every
    write, no RDB snapshots."""

    def __init__(self, directory: Path, appendonly: str = "yes") -> None:
        if not os.access(REDIS_SERVER, os.X_OK):
            missing(f"{REDIS_SERVER} is missing: install redis-server (./scripts/test-deps)")
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.appendonly = appendonly

    def start(self) -> None:
        """Start (or start again, on the same port and AOF directory) and wait for PING."""
        self.starts += 1
        argv = [
            REDIS_SERVER,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--appendonly", self.appendonly,
            "--appendfsync", "always",
            "--save", "",
            "--dir", str(self.dir),
            "--daemonize", "no",
            "--protected-mode", "no",
            "--logfile", str(self.dir / f"redis-{self.starts}.log"),
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True
        )
        wait_until("redis-server to answer PING", self._answers, 60)

    def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            log = (self.dir / f"redis-{self.starts}.log").read_text(errors="replace")
            raise RuntimeError(f"redis-server exited with {self.proc.returncode}: {log[-2000:]}")
        try:
            with self.client(timeout=1) as r:
                return bool(r.ping())
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
            return False  # not listening yet, or still loading its AOF

    def client(self, timeout: float = 10.0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=timeout)

    def signal(self, sig: int) -> None:
        assert self.proc is not None and self.proc.poll() is None
        os.kill(self.proc.pid, sig)

    def kill9(self) -> None:
        """kill -9 (a stopped one too); `start` brings it back on its port and AOF."""
        _reap(self.proc)
        self.proc = None

    close = kill9


# -- PostgreSQL ----------------------------------------------------------------------


@contextlib.contextmanager
def pg_schema() -> Iterator[str]:
    """A fresh schema, dropped after; yields its name."""
    name = "lc_test_" + secrets.token_hex(4)
    try:
        admin = psycopg.connect(BASE, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        missing(f"PostgreSQL is not reachable at {BASE}: {exc}")
    with admin:
        admin.execute(f"CREATE SCHEMA {name}")
        try:
            yield name
        finally:
            # The writers are gone by now; any straggler of ours goes first.
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s",
                (writer_app(name),),
            )
            admin.execute(f"DROP SCHEMA {name} CASCADE")


def writer_app(schema: str) -> str:
    """The writers' application_name: what pg_stat_activity finds them by."""
    return f"lcwriter_{schema}"


def schema_url(schema: str, app: str | None = None) -> str:
    url = f"{BASE}?options=-csearch_path%3D{schema}"
    return url if app is None else f"{url}&application_name={app}"


def terminate_writers(schema: str) -> int:
    """pg_terminate_backend on every writer backend of this schema; how many."""
    with psycopg.connect(BASE, autocommit=True, connect_timeout=5) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (writer_app(schema),),
        ).fetchall()
    return sum(1 for (ok,) in rows if ok)


# -- logcaster processes ---------------------------------------------------------------


class Writer:
    """One `logcaster writer` process; stdout and stderr in files of its own."""

    def __init__(self, directory: Path, name: str, argv: list[str]) -> None:
        self.name = name
        self.out = directory / f"writer-{name}.out"
        self.err = directory / f"writer-{name}.err"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "logcaster", "writer", "--consumer", name, *argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )

    def wait_started(self, timeout: float = 30.0) -> None:
        def started() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"writer {self.name} exited: {self.stderr()[-2000:]}")
            return b"/metrics" in self.out.read_bytes()

        wait_until(f"writer {self.name}'s metrics line", started, timeout)

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def kill9(self) -> None:
        _reap(self.proc)


class Cluster:
    """Everything one fault test starts, killed (by pid) in `close`."""

    def __init__(self, directory: Path, schema: str) -> None:
        self.dir = directory
        self.schema = schema
        self.redis = RedisServer(directory / "redis")
        self.nodes: list[ServerProcess] = []
        self.writers: list[Writer] = []
        self.senders: list[Sender] = []  # cancelled first in `close`
        self._writer_count = 0

    def node(self, index: int) -> ServerProcess:
        """Start ingest node `index` (its -P directory is the same on every start)."""
        persist = self.dir / f"node-{index}"
        server = start_server("-P", str(persist), "--publish", self.redis.url)
        self.nodes.append(server)
        return server

    def writer(self) -> Writer:
        self._writer_count += 1
        name = f"w{self._writer_count}"
        argv = [
            "--redis", self.redis.url,
            "--postgres", schema_url(self.schema, writer_app(self.schema)),
            "--claim-idle-ms", "1000",
            "--max-deliveries", "3",
            "--metrics-port", "0",
        ]  # fmt: skip
        w = Writer(self.dir, name, argv)
        self.writers.append(w)
        return w

    def writer_logs(self) -> str:
        return "\n".join(f"== {w.name}\n{w.stderr()[-3000:]}" for w in self.writers)

    def close(self) -> None:
        for s in self.senders:
            s.cancel()
        for s in self.senders:
            s.join(10)
        for w in self.writers:
            w.kill9()
        for i, n in enumerate(self.nodes):
            n.kill()  # and its stderr read to the end: kept beside the writers' logs
            (self.dir / f"serve-{i}.err").write_bytes(b"".join(n.raw_stderr))
        self.redis.close()


def kill9(server: ServerProcess) -> None:
    """kill -9 an ingest node (its own session: only it)."""
    os.killpg(server.pid, signal.SIGKILL)
    server.proc.wait(10)


# -- senders -------------------------------------------------------------------------

LINE = b"2026-12-05T10:00:00Z INFO svc-%d line %07d payload for the fault test\n"


def lines(service: int, first: int, end: int) -> bytes:
    return b"".join(LINE % (service, n) for n in range(first, end))


class Sender(threading.Thread):
    """A LogCasterClient (acks, a session: the client's default) sending `lines`,
    numbered, in chunks at a steady pace, then waiting for every ack.

    Two ways to another node, set from another thread and taken by this one (a
    client is not thread-safe): `failover`, after its node died, points the
    client elsewhere (it resends its unacknowledged lines there, in its session);
    `move` lets the client finish on its node (every line acknowledged), then a
    new client goes on at the other. Memory stays bounded: a chunk is made when it
    is sent, and a client holds at most `max_pending_lines` unacknowledged lines."""

    def __init__(
        self,
        index: int,
        address: tuple[str, int],
        lines: range,
        *,
        rate: float,
        deadline: float,
        chunk: int = 500,
    ) -> None:
        super().__init__(name=f"sender-{index}", daemon=True)
        self.index = index
        self.first = lines.start
        self.end = lines.stop
        self.rate = rate  # lines per second, at most (a burst may catch up on a stall)
        self.chunk = chunk
        self.client = self._client(address)
        self.clients = [self.client]
        self.failover: tuple[str, int] | None = None
        self.move: tuple[str, int] | None = None
        self.next = lines.start  # the first line not handed to a client yet
        self.error: BaseException | None = None
        self.stop_at = deadline  # a monotonic time: give up (and fail the test) then

    @staticmethod
    def _client(address: tuple[str, int]) -> LogCasterClient:
        return LogCasterClient(
            *address, ack=True, max_pending_lines=20_000, timeout=2.0, connect_timeout=1.0
        )

    def cancel(self) -> None:
        """Give up now (from another thread): the test is over."""
        self.stop_at = 0.0
        for c in self.clients:
            c.stop_at = 0.0  # cuts a blocking call short

    @property
    def connects(self) -> int:
        return sum(c.connects for c in self.clients)

    def _follow(self) -> None:
        target, self.failover = self.failover, None
        if target is not None:
            self.client.address = target
        target, self.move = self.move, None
        if target is not None:
            self._finish()
            self.client = self._client(target)
            self.clients.append(self.client)

    def _finish(self) -> None:
        """Wait until the client's every line is acknowledged, then close it."""
        while not self.client.flush(1.0):
            if time.monotonic() > self.stop_at:
                why = self.client.last_error
                raise TimeoutError(f"{self.name}: {self.client.pending_lines} lines unacked: {why}")
            target, self.failover = self.failover, None
            if target is not None:
                self.client.address = target
        self.client.close(5.0)

    def run(self) -> None:
        try:
            self._send_all()
            self._finish()
        except BaseException as exc:
            self.error = exc

    def _send_all(self) -> None:
        start = time.monotonic()
        while self.next < self.end:
            if time.monotonic() > self.stop_at:
                raise TimeoutError(f"{self.name}: gave up at line {self.next}")
            self._follow()
            time.sleep(max(0.0, start + (self.next - self.first) / self.rate - time.monotonic()))
            stop = min(self.next + self.chunk, self.end)
            try:
                self.client.send(lines(self.index, self.next, stop))
            except BufferFull:
                if time.monotonic() > self.stop_at:
                    raise
                self.client.poll(0.05)
                time.sleep(0.02)
                continue
            self.next = stop

    @property
    def sent(self) -> int:
        return int(self.next - self.first)
