"""LogCaster ingest benchmark (run it as `bench/ingest`; see `bench/ingest --help`).

Sends one seed-style corpus to a fresh `logcaster serve` per run, over 1 and
over 8 TCP connections, and the same bytes to a raw socket-to-file receiver
(socat) for reference. Reports medians over the runs: lines/s, MB/s, the
server's peak RSS and the ratio ours/raw, next to the targets.

Timing, per run: the clock starts just before the first byte is sent (all
connections are open by then) and stops when the reply that shows the final
STATS Total arrives (LogCaster) or when every socat has written all its bytes
to its file and exited (reference). Nothing is subtracted. STATS is polled
every 10 ms once all senders have closed; the corpus is in memory and sent
with `sendall` in 1 MiB chunks, one thread per connection.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import _corpus

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
OUT_DIR = BENCH_DIR / "out"

TARGET_LINES_PER_S = 400_000  # on one connection
TARGET_RSS_BYTES = 200_000_000  # peak RSS ...
TARGET_RSS_LINES = 5_000_000  # ... when ingesting this many lines

SEND_CHUNK = 1 << 20
STATS_POLL_S = 0.010  # STATS poll interval once every sender has closed
STABLE_S = 2.0  # Total unchanged this long after the senders closed: it is final
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 60.0
SOCAT_BLOCK = 262_144  # socat's read/write size (its default is 8 KiB)
MB = 1_000_000  # every "MB" in the output is 10^6 bytes


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- child processes


class Children:
    """Every child process the benchmark starts; all are killed on the way out."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, cmd: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        # A session of its own: Ctrl-C reaches only us, and killpg also gets any
        # grandchildren.
        proc: subprocess.Popen[bytes] = subprocess.Popen(cmd, start_new_session=True, **kwargs)
        self._procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:  # never signal a process group whose leader is reaped
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
        if proc in self._procs:
            self._procs.remove(proc)

    def kill_all(self) -> None:
        for proc in list(self._procs):
            self.kill(proc)


CHILDREN = Children()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


# --------------------------------------------------------------------------- sockets


def free_ports(n: int) -> list[int]:
    """`n` distinct ports the kernel considers free right now (bind to port 0)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_listening(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    """Poll-connect `port` until it accepts; fail if `proc` exits first."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with status {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise BenchError(f"{what} did not listen on port {port}") from None
            time.sleep(0.02)


def query(port: int, command: str, timeout: float = 5.0) -> str:
    """One command on the query port; the server answers and closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(command.encode() + b"\n")
        chunks: list[bytes] = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def parse_stats(reply: str) -> dict[str, str]:
    """`STATS: Total=1, Dropped=0, ...` as a dict of strings."""
    line = reply.strip()
    if not line.startswith("STATS:"):
        raise BenchError(f"not a STATS reply: {reply!r}")
    out: dict[str, str] = {}
    for pair in line[len("STATS:") :].split(","):
        key, sep, value = pair.strip().partition("=")
        if sep:
            out[key] = value
    if "Total" not in out:
        raise BenchError(f"STATS reply without Total: {reply!r}")
    return out


def stat_int(stats: dict[str, str], key: str) -> int | None:
    try:
        return int(float(stats[key]))
    except (KeyError, ValueError):
        return None


def total_of(stats: dict[str, str]) -> int:
    total = stat_int(stats, "Total")
    if total is None:
        raise BenchError(f"STATS Total is not a number: {stats}")
    return total


@dataclass
class SendResult:
    t0: float  # perf_counter just before the first byte
    sent_s: float  # when the last sender had sent everything and closed, from t0


def send_parts(port: int, parts: Sequence[memoryview], check: Callable[[], None]) -> SendResult:
    """Send each part over its own connection to `port`, all at once."""
    return send_parts_to([port] * len(parts), parts, check)


def send_parts_to(
    ports: Sequence[int], parts: Sequence[memoryview], check: Callable[[], None]
) -> SendResult:
    """Send each part over its own connection (to its port), all at once; close each when done.

    `check` runs every 0.5 s while the senders work (it raises if the receiver died).
    """
    socks = [socket.create_connection(("127.0.0.1", port)) for port in ports]
    go = threading.Event()
    errors: list[BaseException] = []
    done_at: list[float] = []

    def sender(sock: socket.socket, data: memoryview) -> None:
        try:
            go.wait()
            for off in range(0, len(data), SEND_CHUNK):
                sock.sendall(data[off : off + SEND_CHUNK])
            sock.shutdown(socket.SHUT_WR)
            done_at.append(time.perf_counter())
        except BaseException as exc:
            errors.append(exc)
        finally:
            sock.close()

    threads = [
        threading.Thread(target=sender, args=(s, p), daemon=True, name=f"sender-{i}")
        for i, (s, p) in enumerate(zip(socks, parts, strict=True))
    ]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    go.set()
    for t in threads:
        while t.is_alive():
            t.join(0.5)
            check()
    if errors:
        raise BenchError(f"sending failed: {errors[0]!r}")
    return SendResult(t0=t0, sent_s=max(done_at) - t0)


# --------------------------------------------------------------------------- runs


class BenchError(Exception):
    pass


@dataclass
class RunResult:
    seconds: float
    lines_per_s: float
    mb_per_s: float
    sent_s: float
    peak_rss_bytes: int | None = None
    total: int | None = None
    stats: dict[str, str] = field(default_factory=dict)
    exit_code: int | None = None
    warnings: list[str] = field(default_factory=list)


def vm_hwm(pid: int) -> int | None:
    """Peak resident set size of `pid` in bytes (VmHWM)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _tail(path: Path, n: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def run_logcaster(
    server_cmd: Sequence[str],
    corpus: _corpus.CorpusInfo,
    parts: Sequence[memoryview],
    timeout_s: float,
) -> RunResult:
    ingest_port, query_port = free_ports(2)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    log_path = OUT_DIR / f"server-{os.getpid()}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGCASTER_")}
    cmd = [
        *server_cmd,
        "serve",
        "--port",
        str(ingest_port),
        "--query-port",
        str(query_port),
        "--log-level",
        "warning",
    ]
    with log_path.open("wb") as log_file:
        proc = CHILDREN.spawn(
            cmd, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, env=env
        )
    try:
        wait_listening(ingest_port, proc, "logcaster")
        wait_listening(query_port, proc, "logcaster (query port)")

        def check() -> None:
            if proc.poll() is not None:
                raise BenchError(f"logcaster exited with status {proc.returncode} during the run")

        expected = corpus.events
        sent = send_parts(ingest_port, parts, check)
        deadline = sent.t0 + timeout_s
        warnings: list[str] = []
        last_total = -1
        changed_at = time.perf_counter()
        while True:
            check()
            stats = parse_stats(query(query_port, "STATS"))
            now = time.perf_counter()
            total = total_of(stats)
            if total != last_total:
                last_total, changed_at = total, now
            if total >= expected:
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
        seconds = end - sent.t0
        # Untimed: let the queue drain into the sinks, then read the peak RSS.
        stats = _settle(query_port, stats, check)
        total = total_of(stats)
        if total != expected:
            warnings.append(f"final Total={total:,}, expected {expected:,} events")
        dropped = stat_int(stats, "Dropped")
        if dropped:
            warnings.append(f"server dropped {dropped:,} events")
        rss = vm_hwm(proc.pid)
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            warnings.append(f"server did not exit within {STOP_TIMEOUT_S:g} s of SIGTERM")
            code = None
        if code not in (0, None):
            warnings.append(f"server exited with status {code} after SIGTERM")
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
        )
    except Exception:
        tail = _tail(log_path)
        if tail:
            log(f"logcaster's log ({log_path}), last lines:\n{tail}")
        raise
    finally:
        CHILDREN.kill(proc)
        # Keep the server's log only when it says something and the run went wrong.
        if proc.returncode == 0 or not _tail(log_path):
            log_path.unlink(missing_ok=True)


def _settle(
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


def ensure_socat() -> str | None:
    """Path of socat, installing the Debian package when it is missing (we run as root)."""
    found = shutil.which("socat")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None:
        return None
    log("socat is missing: installing it with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    prefix = [] if os.geteuid() == 0 or not shutil.which("sudo") else ["sudo"]
    install = [*prefix, apt, "install", "-y", "-qq", "socat"]
    if subprocess.run(install, env=env, check=False).returncode != 0:
        subprocess.run([*prefix, apt, "update", "-qq"], env=env, check=False)
        subprocess.run(install, env=env, check=False)
    return shutil.which("socat")


def reference_dir(nbytes: int) -> Path:
    """Where socat writes: tmpfs when it has room, else bench/out."""
    shm = Path("/dev/shm")
    with contextlib.suppress(OSError):
        if shm.is_dir() and shutil.disk_usage(shm).free > 2 * nbytes:
            return shm
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    return OUT_DIR


def is_listening(port: int) -> bool:
    """True when a TCP socket listens on `port` (from /proc/net/tcp, without connecting)."""
    want = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f, None)
                for line in f:
                    fields = line.split()
                    if len(fields) > 3 and fields[1].endswith(want) and fields[3] == "0A":
                        return True
        except OSError:
            continue
    return False


def socat_command(socat: str, port: int | str, path: Path | str) -> list[str]:
    return [
        socat,
        "-u",
        "-b",
        str(SOCAT_BLOCK),
        f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr",
        f"OPEN:{path},wronly",
    ]


def reference_description(socat: str, nbytes: int) -> str:
    cmd = " ".join(socat_command(socat, "<port>", reference_dir(nbytes) / "<file>"))
    return f"one `{cmd}` per connection, into zero-filled files overwritten in place"


class RawReference:
    """The raw socket-to-file receiver: one `socat` per connection, each writing its
    connection's bytes into its own file.

    The files are allocated (zero-filled) before each run and overwritten in place,
    so the timed part is socket reads plus file writes. Appending to fresh files
    instead makes the time depend mostly on how fast the machine hands out new
    pages (on the VM this was written on, 2-5x slower and very noisy at 5M lines),
    which LogCaster, keeping a bounded buffer, never pays. A run ends when every
    socat has written all its bytes and exited; the contents are then checked.
    """

    def __init__(self, socat: str, parts: Sequence[memoryview]) -> None:
        self.socat = socat
        self.parts = parts
        self.dir = reference_dir(sum(len(p) for p in parts))
        self.files = [
            self.dir / f"logcaster-bench-raw-{os.getpid()}-{i}.log" for i in range(len(parts))
        ]

    def command(self, port: int, path: Path) -> list[str]:
        return socat_command(self.socat, port, path)

    def _prepare(self) -> None:
        zeros = bytes(SEND_CHUNK)
        for path, part in zip(self.files, self.parts, strict=True):
            with path.open("r+b" if path.exists() else "wb") as f:
                for off in range(0, len(part), SEND_CHUNK):
                    f.write(zeros[: min(SEND_CHUNK, len(part) - off)])
                f.truncate(len(part))

    def _verify(self) -> None:
        for path, part in zip(self.files, self.parts, strict=True):
            if path.read_bytes() != part:
                raise BenchError(f"socat's file {path} does not hold the bytes sent")

    def run(self, corpus: _corpus.CorpusInfo) -> RunResult:
        self._prepare()  # untimed
        ports = free_ports(len(self.parts))
        procs = [
            CHILDREN.spawn(
                self.command(port, path), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
            )
            for port, path in zip(ports, self.files, strict=True)
        ]
        try:
            deadline = time.monotonic() + READY_TIMEOUT_S
            for port, proc in zip(ports, procs, strict=True):
                while not is_listening(port):
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise BenchError(f"socat did not listen on port {port}")
                    time.sleep(0.01)

            def check() -> None:
                for proc in procs:
                    if proc.poll() not in (None, 0):
                        raise BenchError(f"socat exited with status {proc.returncode}")

            sent = send_parts_to(ports, self.parts, check)
            for proc in procs:
                proc.wait(120.0)
            end = time.perf_counter()
            check()
            seconds = end - sent.t0
            self._verify()  # untimed
            return RunResult(
                seconds=seconds,
                lines_per_s=corpus.lines / seconds,
                mb_per_s=corpus.nbytes / seconds / MB,
                sent_s=sent.sent_s,
            )
        except subprocess.TimeoutExpired:
            raise BenchError("socat did not finish writing within 120 s") from None
        finally:
            for proc in procs:
                CHILDREN.kill(proc)

    def close(self) -> None:
        for path in self.files:
            path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- report


@dataclass
class Summary:
    connections: int
    runs: list[RunResult]
    raw_runs: list[RunResult]

    @property
    def lines_per_s(self) -> float:
        return statistics.median(r.lines_per_s for r in self.runs)

    @property
    def mb_per_s(self) -> float:
        return statistics.median(r.mb_per_s for r in self.runs)

    @property
    def peak_rss_bytes(self) -> int | None:
        values = [r.peak_rss_bytes for r in self.runs if r.peak_rss_bytes is not None]
        return int(statistics.median(values)) if values else None

    @property
    def raw_lines_per_s(self) -> float | None:
        if not self.raw_runs:
            return None
        return statistics.median(r.lines_per_s for r in self.raw_runs)

    @property
    def raw_mb_per_s(self) -> float | None:
        if not self.raw_runs:
            return None
        return statistics.median(r.mb_per_s for r in self.raw_runs)

    @property
    def ratio(self) -> float | None:
        raw = self.raw_lines_per_s
        return self.lines_per_s / raw if raw else None


def _fmt_int(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def _fmt_mb(x: float | None) -> str:
    return "-" if x is None else f"{x:,.1f}"


def throughput_verdict(s: Summary) -> str:
    if s.connections != 1:
        return "-"
    ok = s.lines_per_s >= TARGET_LINES_PER_S
    return f">={TARGET_LINES_PER_S // 1000}k {'PASS' if ok else 'FAIL'}"


def rss_verdict(s: Summary, lines: int) -> str:
    rss = s.peak_rss_bytes
    if rss is None:
        return "-"
    limit = f"<={TARGET_RSS_BYTES // MB}MB"
    if lines < TARGET_RSS_LINES:
        return f"{limit} (at 5M)"
    return f"{limit} {'PASS' if rss <= TARGET_RSS_BYTES else 'FAIL'}"


def render_table(summaries: Sequence[Summary], corpus: _corpus.CorpusInfo, runs: int) -> str:
    header = (
        "connections",
        "lines/s",
        "target",
        "MB/s",
        "peak RSS",
        "target",
        "raw lines/s",
        "raw MB/s",
        "ours/raw",
    )
    rows = [header]
    for s in summaries:
        rss = s.peak_rss_bytes
        rows.append(
            (
                str(s.connections),
                _fmt_int(s.lines_per_s),
                throughput_verdict(s),
                _fmt_mb(s.mb_per_s),
                "-" if rss is None else f"{rss / MB:,.1f} MB",
                rss_verdict(s, corpus.lines),
                _fmt_int(s.raw_lines_per_s),
                _fmt_mb(s.raw_mb_per_s),
                "-" if s.ratio is None else f"{s.ratio:.2f}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        f"LogCaster ingest: {corpus.lines:,} lines, {corpus.nbytes / MB:,.1f} MB, "
        f"{corpus.events:,} events ({corpus.blocks:,} multi-line blocks), median of {runs} runs",
    ]
    for i, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append(
        f"targets: >={TARGET_LINES_PER_S:,} lines/s on 1 connection; peak RSS (VmHWM) "
        f"<={TARGET_RSS_BYTES // MB} MB on {TARGET_RSS_LINES:,} lines. MB = 10^6 bytes. "
        f"raw = one socat per connection writing a preallocated file in "
        f"{reference_dir(corpus.nbytes)}."
    )
    return "\n".join(lines)


def _git_rev() -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def result_doc(
    summaries: Sequence[Summary],
    corpus: _corpus.CorpusInfo,
    runs: int,
    server_cmd: Sequence[str],
    reference: str | None,
) -> dict[str, object]:
    def run_doc(r: RunResult) -> dict[str, object]:
        return {k: v for k, v in asdict(r).items() if v is not None and v != {}}

    results = []
    for s in summaries:
        rss = s.peak_rss_bytes
        results.append(
            {
                "connections": s.connections,
                "lines_per_s": round(s.lines_per_s),
                "mb_per_s": round(s.mb_per_s, 2),
                "peak_rss_bytes": rss,
                "peak_rss_mb": None if rss is None else round(rss / MB, 1),
                "raw_lines_per_s": None if s.raw_lines_per_s is None else round(s.raw_lines_per_s),
                "raw_mb_per_s": None if s.raw_mb_per_s is None else round(s.raw_mb_per_s, 2),
                "ratio": None if s.ratio is None else round(s.ratio, 3),
                "target_lines_per_s_met": (
                    s.lines_per_s >= TARGET_LINES_PER_S if s.connections == 1 else None
                ),
                "target_rss_met": (
                    rss <= TARGET_RSS_BYTES
                    if rss is not None and corpus.lines >= TARGET_RSS_LINES
                    else None
                ),
                "runs": [run_doc(r) for r in s.runs],
                "raw_runs": [run_doc(r) for r in s.raw_runs],
            }
        )
    return {
        "bench": "ingest",
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git": _git_rev(),
        "corpus": {
            "path": str(corpus.path),
            "lines": corpus.lines,
            "bytes": corpus.nbytes,
            "events": corpus.events,
            "blocks": corpus.blocks,
            "block_lines": corpus.block_lines,
            "seed": corpus.seed,
        },
        "runs": runs,
        "server": list(server_cmd),
        "reference": reference,
        "targets": {
            "lines_per_s_1_connection": TARGET_LINES_PER_S,
            "peak_rss_bytes": TARGET_RSS_BYTES,
            "peak_rss_at_lines": TARGET_RSS_LINES,
        },
        "host": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "results": results,
    }


# --------------------------------------------------------------------------- main


def _count(text: str) -> int:
    """`1000000`, `1_000_000`, `1000k` or `1M`."""
    t = text.strip().replace("_", "").replace(",", "")
    scale = 1
    if t[-1:].lower() in ("k", "m"):
        scale = 1_000 if t[-1].lower() == "k" else 1_000_000
        t = t[:-1]
    try:
        value = int(float(t) * scale)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a count: {text!r}") from None
    if value < 1_000:
        raise argparse.ArgumentTypeError("at least 1,000 lines")
    return value


def _connections(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not values or any(v < 1 or v > 256 for v in values):
        raise argparse.ArgumentTypeError("connection counts must be 1..256")
    return values


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench/ingest",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "LogCaster ingest benchmark: send a seed-style corpus (mixed formats, ~10% of\n"
            "lines in 15-30 line stack-trace blocks) to a fresh `logcaster serve` per run,\n"
            "over each connection count, and the same bytes to a raw socket-to-file\n"
            "receiver for reference (one socat per connection, each writing a file).\n"
            "Prints medians of lines/s, MB/s (10^6 bytes), the server's peak RSS (VmHWM)\n"
            "and ours/raw, next to the targets: >=400,000 lines/s on one connection,\n"
            "peak RSS <=200 MB on 5M lines."
        ),
        epilog=(
            "Timing: from just before the first byte is sent until the STATS reply that\n"
            "shows the final Total (the corpus' event count; STATS polled every 10 ms once\n"
            "the senders have closed), or until every socat has written all its bytes.\n"
            "The corpus is generated into bench/out/corpus-<N>.log (seeded, deterministic),\n"
            "deleted at the end unless --keep-corpus, and reused whenever it is there.\n"
            "Results: a table on stdout, then one JSON line, also written to\n"
            "bench/out/ingest-<timestamp>.json.\n\n"
            "examples:\n"
            "  bench/ingest                                        1M lines, 1 and 8 connections\n"
            "  bench/ingest --lines 5M --keep-corpus               the peak-RSS target\n"
            "  bench/ingest --lines 100k --runs 1 --connections 1  a quick check"
        ),
    )
    parser.add_argument(
        "--lines",
        type=_count,
        default=1_000_000,
        metavar="N",
        help="corpus size in lines, e.g. 1000000, 1M, 5M (default 1M)",
    )
    parser.add_argument(
        "--runs", type=_positive, default=3, help="runs per configuration; medians (default 3)"
    )
    parser.add_argument(
        "--connections",
        type=_connections,
        default=[1, 8],
        metavar="LIST",
        help='comma-separated connection counts (default "1,8")',
    )
    parser.add_argument(
        "--no-reference", action="store_true", help="skip the socat raw-receiver reference"
    )
    parser.add_argument(
        "--keep-corpus",
        action="store_true",
        help="keep a corpus this run generated in bench/out for later runs "
        "(default: delete it at the end; a corpus already there is always reused and kept)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print only the JSON result line on stdout (the table goes to stderr)",
    )
    parser.add_argument(
        "--server",
        default=str(REPO / ".venv" / "bin" / "logcaster"),
        metavar="PATH",
        help="the logcaster command (default: .venv/bin/logcaster of this repo); "
        "LOGCASTER_* environment variables are not passed on",
    )
    parser.add_argument("--seed", type=int, default=_corpus.DEFAULT_SEED, help=argparse.SUPPRESS)
    return parser


@contextlib.contextmanager
def _corpus_for(lines: int, seed: int, keep: bool) -> Iterator[_corpus.CorpusInfo]:
    path = _corpus.corpus_path(OUT_DIR, lines)
    info = _corpus.load_cached(path, lines, seed)
    generated = info is None
    if info is None:
        log(f"generating corpus: {lines:,} lines -> {path}")
        info = _corpus.generate(path, lines, seed)
        log(f"  {info.nbytes / MB:,.1f} MB, {info.events:,} events in {info.generate_s:.1f} s")
    else:
        log(f"using cached corpus {path} ({info.nbytes / MB:,.1f} MB, {info.events:,} events)")
    try:
        yield info
    finally:
        if generated and not keep:
            _corpus.remove(info)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    server_cmd = [args.server]
    if not Path(args.server).exists() and shutil.which(args.server) is None:
        log(f"error: no logcaster command at {args.server} (run `make install`)")
        return 2
    socat = None if args.no_reference else ensure_socat()
    if not args.no_reference and socat is None:
        log("warning: socat is not available: running without the raw reference")
    try:
        with _corpus_for(args.lines, args.seed, args.keep_corpus) as corpus:
            summaries = _bench(args, corpus, server_cmd, socat)
    except BenchError as exc:
        log(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        CHILDREN.kill_all()
    table = render_table(summaries, corpus, args.runs)
    print(table, file=sys.stderr if args.json else sys.stdout, flush=True)
    for s in summaries:
        for r in s.runs:
            for w in r.warnings:
                log(f"warning ({s.connections} conn): {w}")
    reference = None if socat is None else reference_description(socat, corpus.nbytes)
    doc = result_doc(summaries, corpus, args.runs, server_cmd, reference)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_path = OUT_DIR / f"ingest-{stamp}.json"
    out_path.write_text(json.dumps(doc, indent=2) + "\n")
    log(f"results written to {out_path}")
    print(json.dumps(doc, separators=(",", ":")), flush=True)
    return 0


def _bench(
    args: argparse.Namespace,
    corpus: _corpus.CorpusInfo,
    server_cmd: Sequence[str],
    socat: str | None,
) -> list[Summary]:
    data = memoryview(corpus.path.read_bytes())
    if len(data) != corpus.nbytes:
        raise BenchError(f"{corpus.path} changed size while in use")
    timeout_s = max(120.0, corpus.lines / 20_000)
    summaries: list[Summary] = []
    for conns in args.connections:
        parts = _corpus.split(data, corpus.split_points, conns)
        summary = Summary(connections=conns, runs=[], raw_runs=[])
        raw_ref = None if socat is None else RawReference(socat, parts)
        try:
            _bench_config(args, corpus, server_cmd, parts, raw_ref, summary, timeout_s)
        finally:
            if raw_ref is not None:
                raw_ref.close()
        summaries.append(summary)
    return summaries


def _bench_config(
    args: argparse.Namespace,
    corpus: _corpus.CorpusInfo,
    server_cmd: Sequence[str],
    parts: Sequence[memoryview],
    raw_ref: RawReference | None,
    summary: Summary,
    timeout_s: float,
) -> None:
    conns = len(parts)
    for i in range(args.runs):
        r = run_logcaster(server_cmd, corpus, parts, timeout_s)
        summary.runs.append(r)
        rss = "-" if r.peak_rss_bytes is None else f"{r.peak_rss_bytes / MB:,.1f} MB"
        msg = (
            f"[{conns} conn, run {i + 1}/{args.runs}] logcaster: {r.lines_per_s:,.0f} lines/s "
            f"{r.mb_per_s:,.1f} MB/s ({r.seconds:.3f} s, sent in {r.sent_s:.3f} s), "
            f"peak RSS {rss}, Total {r.total:,}"
        )
        if raw_ref is not None:
            raw = raw_ref.run(corpus)
            summary.raw_runs.append(raw)
            msg += f"; socat: {raw.lines_per_s:,.0f} lines/s ({raw.seconds:.3f} s)"
        log(msg)


if __name__ == "__main__":
    raise SystemExit(main())
