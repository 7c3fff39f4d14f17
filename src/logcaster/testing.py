"""Helpers to run a real LogCaster server in tests and benchmarks.

`start_server()` runs `python -m logcaster serve` as a child process on
ephemeral ports (port 0) and waits for its `ready` log line, which carries the
bound ports — no sleeping, no port guessing.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import orjson


class ServerProcess:
    def __init__(self, args: Sequence[str], env: dict[str, str] | None = None) -> None:
        cmd = [sys.executable, "-m", "logcaster", "serve", *args]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, start_new_session=True
        )
        self.logs: list[dict[str, Any]] = []
        self.raw_stderr: list[bytes] = []
        self.ports: dict[str, int] = {}
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.raw_stderr.append(line)
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(doc, dict):
                self.logs.append(doc)
                if doc.get("event") == "ready":
                    self.ports = dict(doc["ports"])
                    self._ready.set()
        self._ready.set()  # exited: stop waiting

    def wait_ready(self, timeout: float = 15.0) -> None:
        if not self._ready.wait(timeout) or not self.ports:
            self.kill()
            err = b"".join(self.raw_stderr).decode(errors="replace")
            raise RuntimeError(f"server did not become ready: {err}")

    @property
    def ingest_port(self) -> int:
        return self.ports["ingest"]

    @property
    def query_port(self) -> int:
        return self.ports["query"]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def query(self, command: str, timeout: float = 10.0) -> str:
        return query("127.0.0.1", self.query_port, command, timeout)

    def stats(self) -> dict[str, float]:
        return parse_stats(self.query("STATS"))

    def send(self, data: bytes, port: int | None = None) -> None:
        with socket.create_connection(("127.0.0.1", port or self.ingest_port)) as sock:
            sock.sendall(data)

    def wait_total(self, total: int, timeout: float = 30.0) -> dict[str, float]:
        """Wait until STATS Total reaches `total`; return the last STATS."""
        deadline = time.monotonic() + timeout
        stats = self.stats()
        while stats["Total"] < total:
            if time.monotonic() > deadline:
                raise TimeoutError(f"Total={stats['Total']} never reached {total}")
            time.sleep(0.02)
            stats = self.stats()
        return stats

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        self._release()
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self._release()

    def _release(self) -> None:
        """Read the rest of stderr, then close the pipe (no ResourceWarning)."""
        self._reader.join(5)
        if self.proc.stderr is not None and not self.proc.stderr.closed:
            self.proc.stderr.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def start_server(*args: str, env: dict[str, str] | None = None) -> ServerProcess:
    """Start a server on ephemeral ports (unless `args` say otherwise) and wait for it."""
    argv = list(args)
    if "--port" not in argv:
        argv += ["--port", "0"]
    if "--query-port" not in argv:
        argv += ["--query-port", "0"]
    if "--http-port" not in argv:
        argv += ["--http-port", "0"]
    server = ServerProcess(argv, env=env)
    server.wait_ready()
    return server


T = TypeVar("T")


def wait_for(
    what: str, probe: Callable[[], T], ok: Callable[[T], bool], timeout: float = 20.0
) -> T:
    """Poll `probe()` until `ok(value)` holds; return the value. Readiness by
    observation, never by sleeping a fixed time."""
    deadline = time.monotonic() + timeout
    value = probe()
    while not ok(value):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}; last value: {value!r}")
        time.sleep(0.02)
        value = probe()
    return value


def run_threads(targets: list[Callable[[], None]], timeout: float = 60.0) -> None:
    """Run every target in its own thread; re-raise the first failure here."""
    errors: list[BaseException] = []

    def guard(target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guard, args=(t,), daemon=True) for t in targets]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            raise TimeoutError("a thread did not finish")
    if errors:
        raise errors[0]


def _ephemeral_low() -> int:
    """The first port of the kernel's range for port-0 binds (Linux default 32768)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on, for a test that needs a
    closed port or one to start a server on later.

    Picked below the kernel's ephemeral range: a port-0 bind anywhere (a parallel
    test, a client's own end of a connection) never gets it, as it could a port
    freed by a bind to 0 (a test then found its "closed" port answered).
    """
    low = _ephemeral_low()
    rnd = random.Random()
    for _ in range(200):
        port = rnd.randrange(max(1024, low - 12_000), low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port below {low}")


def query(host: str, port: int, command: str, timeout: float = 10.0) -> str:
    """Send one command line to the query port and return the whole answer."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def parse_stats(reply: str) -> dict[str, float]:
    """`STATS: Total=1, Dropped=0, …` as a dict of numbers."""
    if not reply.startswith("STATS: "):
        raise ValueError(f"not a STATS reply: {reply!r}")
    out: dict[str, float] = {}
    for pair in reply[len("STATS: ") :].strip().split(", "):
        key, _, value = pair.partition("=")
        out[key] = float(value)
    return out
