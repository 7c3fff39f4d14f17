"""One timed ingest run against a fresh `logcaster serve` (bench/ingest).

Starts the server on ports of its own (port 0, read from its `ready` line;
optionally with its file sink and a given fsync setting), sends the corpus
parts, one connection each, either raw
(`send_parts`) or through acknowledged-delivery clients (`send_parts_acked`),
and stops the clock when STATS shows the corpus' event count, every connection
ended and every event delivered (raw), or when every client holds its last ack.
Then, untimed, it lets the queue drain, reads the peak RSS and stops the server.
The references run in bench/_socat.py and bench/_rsyslog.py. Starting and
stopping the server (`start_logcaster`, `stop_logcaster`, `finish_logcaster`)
and the timing rule (`wait_total`, `settle`) serve bench/http too.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import _corpus
from _common import (
    CHILDREN,
    MB,
    OUT_DIR,
    READY_TIMEOUT_S,
    BenchError,
    RunResult,
    SendResult,
    cpu_seconds,
    log,
    run_senders,
    send_parts,
    tail,
    vm_hwm,
)
from _query_port import parse_stats, query, stat_int, total_of

STATS_POLL_S = 0.010  # STATS poll interval once every sender has closed
STABLE_S = 2.0  # Total unchanged this long after the senders closed: it is final
STOP_TIMEOUT_S = 60.0
SEND_CHUNK_BYTES = 1 << 20  # per send with --ack (cut at the next newline)


def _all_in(stats: dict[str, str]) -> bool:
    """Every connection has ended (so every event is submitted) and every event is
    delivered or dropped. Servers without these counters: true."""
    if stat_int(stats, "Clients"):
        return False
    received = stat_int(stats, "Total")
    delivered = stat_int(stats, "Delivered")
    if received is None or delivered is None:
        return True
    return delivered + (stat_int(stats, "Dropped") or 0) >= received


def wait_total(
    query_port: int,
    t0: float,
    expected: int,
    timeout_s: float,
    check: Callable[[], None],
    warnings: list[str],
) -> tuple[dict[str, str], float]:
    """Poll STATS until Total reaches `expected` and the server has taken everything:
    (the last STATS, when it did).

    Reaching `expected` alone is not the end when the server groups lines into more
    events than the corpus holds (a corpus of stack traces, before the server knows
    its languages): the clock stops once every connection has ended and every event
    is delivered. With fewer events than expected, Total stops changing and the run
    is timed to its last change, with a warning.
    """
    deadline = t0 + timeout_s
    last_total = -1
    changed_at = time.perf_counter()
    while True:
        check()
        stats = parse_stats(query(query_port, "STATS"))
        now = time.perf_counter()
        total = total_of(stats)
        if total != last_total:
            last_total, changed_at = total, now
        if total >= expected and _all_in(stats):
            end = now
            break
        if now - changed_at > STABLE_S:
            end = changed_at
            warnings.append(
                f"Total stopped at {total:,} but the corpus holds {expected:,} events; "
                f"timed to the last change"
            )
            break
        if now > deadline:
            raise BenchError(f"timeout: STATS Total={total:,} of {expected:,} events")
        time.sleep(STATS_POLL_S)
    return stats, end


def send_parts_acked(
    port: int, parts: Sequence[memoryview], check: Callable[[], None], timeout_s: float
) -> SendResult:
    """Send each part through its own acknowledged-delivery client; done when all are acked."""
    go = threading.Event()
    errors: list[BaseException] = []
    done_at: list[float] = []

    try:
        from logcaster.client import LogCasterClient
    except ImportError as exc:
        raise BenchError(
            f"--ack needs LogCaster importable (run .venv/bin/python bench/ingest): {exc}"
        ) from exc

    def sender(part: memoryview) -> None:
        data = bytes(part)
        client = LogCasterClient("127.0.0.1", port, ack=True, timeout=timeout_s)
        try:
            go.wait()
            off = 0
            while off < len(data):
                cut = data.find(b"\n", off + SEND_CHUNK_BYTES)
                end = len(data) if cut < 0 else cut + 1
                client.send(data[off:end])
                off = end
            if not client.close(timeout_s):
                raise BenchError(f"{client.pending_lines:,} lines never acknowledged")
            done_at.append(time.perf_counter())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=sender, args=(p,), daemon=True) for p in parts]
    # 0.2 s: every thread copies its part before the clock starts.
    return run_senders(threads, go, check, errors, done_at, settle_s=0.2)


@dataclass
class Server:
    """A `logcaster serve` the benchmark started, and where it listens."""

    proc: subprocess.Popen[bytes]
    ingest_port: int
    query_port: int
    http_port: int
    log_path: Path
    data_dir: Path | None

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise BenchError(f"logcaster exited with status {self.proc.returncode} during the run")


def start_logcaster(
    server_cmd: Sequence[str],
    persist: str | None = None,
    store: bool = True,
    env_extra: dict[str, str] | None = None,
) -> Server:
    """A fresh server on ports of its own (TCP lines, queries, HTTP), once it is ready.
    `env_extra`: LOGCASTER_* settings of the run (the caller's own are not passed on).

    Every port is 0, and the bound ones come from the server's `ready` log line: a
    port picked free beforehand can be taken by another program before the server
    binds it (it happened on a busy machine)."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    log_path = OUT_DIR / f"server-{os.getpid()}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGCASTER_")}
    env.update(env_extra or {})
    cmd = [
        *server_cmd,
        "serve",
        "--port",
        "0",
        "--query-port",
        "0",
        "--http-port",
        "0",
        "--log-level",
        "warning",
    ]
    data_dir = None
    if persist is not None:
        # On the real disk (bench/out), not /dev/shm: the durable case.
        data_dir = OUT_DIR / f"persist-{os.getpid()}"
        shutil.rmtree(data_dir, ignore_errors=True)
        cmd += ["--persist", str(data_dir)]
        env["LOGCASTER_PERSIST__FSYNC"] = persist
        # The store (its indexer process) follows the file sink unless --no-store.
        env["LOGCASTER_STORE__ENABLED"] = "auto" if store else "false"
    with log_path.open("wb") as log_file:
        proc = CHILDREN.spawn(
            cmd, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, env=env
        )
    try:
        ports = _ready_ports(proc, log_path)
    except BaseException:
        CHILDREN.kill(proc)
        last = tail(log_path)
        log_path.unlink(missing_ok=True)
        if data_dir is not None:
            shutil.rmtree(data_dir, ignore_errors=True)
        if last:
            log(f"logcaster's log, last lines:\n{last}")
        raise
    return Server(proc, ports["ingest"], ports["query"], ports["http"], log_path, data_dir)


def _ready_ports(proc: subprocess.Popen[bytes], log_path: Path) -> dict[str, int]:
    """The ports in the server's `ready` log line, once it is written."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        for line in log_path.read_bytes().splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict) and doc.get("event") == "ready":
                ports = doc.get("ports", {})
                missing = {"ingest", "query", "http"} - set(ports)
                if missing:
                    raise BenchError(f"logcaster's ready line names no {sorted(missing)} port")
                return {k: int(v) for k, v in ports.items()}
        if proc.poll() is not None:
            raise BenchError(f"logcaster exited with status {proc.returncode} before ready")
        if time.monotonic() > deadline:
            raise BenchError(f"logcaster was not ready within {READY_TIMEOUT_S:g} s")
        time.sleep(0.02)


def stop_logcaster(server: Server, warnings: list[str]) -> int | None:
    """SIGTERM and wait: the exit status (None: it did not exit in time)."""
    server.proc.send_signal(signal.SIGTERM)
    try:
        code = server.proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        warnings.append(f"server did not exit within {STOP_TIMEOUT_S:g} s of SIGTERM")
        code = None
    if code not in (0, None):
        warnings.append(f"server exited with status {code} after SIGTERM")
    return code


def finish_logcaster(server: Server, failed: bool) -> None:
    """Kill what is left; show the log of a run that went wrong, else delete it."""
    if failed:
        last = tail(server.log_path)
        if last:
            log(f"logcaster's log ({server.log_path}), last lines:\n{last}")
    CHILDREN.kill(server.proc)
    if server.data_dir is not None:
        shutil.rmtree(server.data_dir, ignore_errors=True)
    # Keep the server's log only when it says something and the run went wrong.
    if server.proc.returncode == 0 or not tail(server.log_path):
        server.log_path.unlink(missing_ok=True)


def run_logcaster(
    server_cmd: Sequence[str],
    corpus: _corpus.CorpusInfo,
    parts: Sequence[memoryview],
    timeout_s: float,
    persist: str | None = None,
    ack: bool = False,
    store: bool = True,
    env_extra: dict[str, str] | None = None,
) -> RunResult:
    server = start_logcaster(server_cmd, persist, store, env_extra)
    failed = True
    try:
        expected = corpus.events
        warnings: list[str] = []
        cpu0 = cpu_seconds(server.proc.pid)
        if ack:
            sent = send_parts_acked(server.ingest_port, parts, server.check, timeout_s)
            end = sent.t0 + sent.sent_s
            stats = parse_stats(query(server.query_port, "STATS"))
        else:
            sent = send_parts(server.ingest_port, parts, server.check)
            stats, end = wait_total(
                server.query_port, sent.t0, expected, timeout_s, server.check, warnings
            )
        seconds = end - sent.t0
        cpu1 = cpu_seconds(server.proc.pid)
        # Untimed: let the queue drain into the sinks, then read the peak RSS.
        stats = settle(server.query_port, stats, server.check)
        total = total_of(stats)
        if total != expected:
            warnings.append(f"final Total={total:,}, expected {expected:,} events")
        dropped = stat_int(stats, "Dropped")
        if dropped:
            warnings.append(f"server dropped {dropped:,} events")
        rss = vm_hwm(server.proc.pid)
        code = stop_logcaster(server, warnings)
        failed = False
        return RunResult(
            seconds=seconds,
            lines_per_s=corpus.lines / seconds,
            mb_per_s=corpus.nbytes / seconds / MB,
            sent_s=sent.sent_s,
            peak_rss_bytes=rss,
            total=total,
            stats=stats,
            exit_code=code,
            warnings=warnings,
            cpu_s=None if cpu0 is None or cpu1 is None else cpu1 - cpu0,
        )
    finally:
        finish_logcaster(server, failed)


def settle(
    query_port: int, stats: dict[str, str], check: Callable[[], None], timeout: float = 30.0
) -> dict[str, str]:
    """Wait until every received event is delivered (when STATS reports Delivered)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        delivered = stat_int(stats, "Delivered")
        dropped = stat_int(stats, "Dropped") or 0
        if delivered is None or delivered + dropped >= total_of(stats):
            break
        time.sleep(0.05)
        check()
        stats = parse_stats(query(query_port, "STATS"))
    return stats
