"""Pieces the ingest benchmark and its references share: child processes, sockets,
sending, run results, peak RSS, installing a missing Debian package."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import platform
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
OUT_DIR = BENCH_DIR / "out"

SEND_CHUNK = 1 << 20
READY_TIMEOUT_S = 20.0
MB = 1_000_000  # every "MB" in the output is 10^6 bytes


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


def reexec_in_venv(modules: Sequence[str]) -> None:
    """Run this script again under the repository's venv when a module it needs
    (LogCaster, aiohttp) cannot be imported here; return when they all can."""
    try:
        for name in modules:
            importlib.import_module(name)
    except ImportError as exc:
        python = REPO / ".venv" / "bin" / "python"
        in_venv = Path(sys.prefix).resolve() == python.parent.parent.resolve()
        if python.exists() and not in_venv and not os.environ.get("_BENCH_REEXEC"):
            os.environ["_BENCH_REEXEC"] = "1"
            os.execv(str(python), [str(python), *sys.argv])
        sys.exit(f"error: {exc}: run it with {python} (`make install` creates it)")


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


def exit_on_sigterm() -> None:
    """SIGTERM ends a benchmark as Ctrl-C does: `finally` blocks stop its servers."""

    def on_sigterm(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_sigterm)


def name_list(allowed: Sequence[str]) -> Callable[[str], list[str]]:
    """An argparse type: a comma-separated list of some of `allowed`, in order, once each."""

    def parse(text: str) -> list[str]:
        names = [n.strip() for n in text.split(",") if n.strip()]
        bad = [n for n in names if n not in allowed]
        if not names or bad:
            raise argparse.ArgumentTypeError(f"expected some of {', '.join(allowed)}, not {text!r}")
        return list(dict.fromkeys(names))

    return parse


def add_run_options(parser: argparse.ArgumentParser, seed: int, tables: str = "tables") -> None:
    """The options every server benchmark shares: --keep-corpus, --json, --server,
    and the hidden --seed (the corpus generator's, `seed` by default)."""
    parser.add_argument(
        "--keep-corpus", action="store_true",
        help="keep a corpus this run generated in bench/out (as bench/ingest)",
    )  # fmt: skip
    parser.add_argument(
        "--json", action="store_true", help=f"print only the JSON line on stdout ({tables}: stderr)"
    )
    parser.add_argument(
        "--server", default=str(REPO / ".venv" / "bin" / "logcaster"), metavar="PATH",
        help="the logcaster command (default: .venv/bin/logcaster of this repo)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=seed, help=argparse.SUPPRESS)


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) `pid` has used so far, from /proc/PID/stat. Less
    sensitive than wall time to other work on the machine."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return None
    # After the command name: state is field 3, utime 14 and stime 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


def tail(path: Path, n: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def ensure_command(command: str, package: str) -> str | None:
    """Path of `command`, installing Debian's `package` when it is missing (we run as root).

    Services the package would start are left to the system's policy (in a container,
    /usr/sbin/policy-rc.d usually forbids starting them); the benchmark never talks to
    a system-wide instance either way.
    """
    found = shutil.which(command)
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None:
        return None
    log(f"{command} is missing: installing the {package} package with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    prefix = [] if os.geteuid() == 0 or not shutil.which("sudo") else ["sudo"]
    install = [*prefix, apt, "install", "-y", "-qq", package]
    if subprocess.run(install, env=env, check=False).returncode != 0:
        subprocess.run([*prefix, apt, "update", "-qq"], env=env, check=False)
        subprocess.run(install, env=env, check=False)
    return shutil.which(command)


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


def wait_listening_quietly(
    ports: Sequence[int], procs: Sequence[subprocess.Popen[bytes]], what: str
) -> None:
    """Wait until every port listens, without connecting (a receiver that writes what
    it gets should not see a stray empty session); fail if a process exits first."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    for port in ports:
        while not is_listening(port):
            if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
                raise BenchError(f"{what} did not listen on port {port}")
            time.sleep(0.01)


@dataclass
class SendResult:
    t0: float  # perf_counter just before the first byte
    sent_s: float  # when the last sender had sent everything and closed, from t0


def send_parts(
    port: int,
    parts: Sequence[memoryview],
    check: Callable[[], None],
    tls: ssl.SSLContext | None = None,
) -> SendResult:
    """Send each part over its own connection to `port`, all at once (`tls`: over TLS)."""
    return send_parts_to([port] * len(parts), parts, check, tls=tls)


def send_parts_to(
    ports: Sequence[int],
    parts: Sequence[memoryview],
    check: Callable[[], None],
    stall_s: float | None = None,
    tls: ssl.SSLContext | None = None,
) -> SendResult:
    """Send each part over its own connection (to its port), all at once; close each when done.
    With `tls` each connection does its handshake before the clock starts, and ends
    with TLS's close_notify (TLS has no half-close).

    `check` runs every 0.5 s while the senders work (it raises if the receiver died);
    a send blocked longer than `stall_s` fails.
    """
    socks = [socket.create_connection(("127.0.0.1", port)) for port in ports]
    if tls is not None:
        socks = [tls.wrap_socket(sock, server_hostname="127.0.0.1") for sock in socks]
    for sock in socks:
        sock.settimeout(stall_s)
    go = threading.Event()
    errors: list[BaseException] = []
    done_at: list[float] = []

    def sender(sock: socket.socket, data: memoryview) -> None:
        try:
            go.wait()
            for off in range(0, len(data), SEND_CHUNK):
                sock.sendall(data[off : off + SEND_CHUNK])
            if isinstance(sock, ssl.SSLSocket):
                sock.unwrap()  # close_notify: the server's end of stream
            else:
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
    return run_senders(threads, go, check, errors, done_at)


def run_senders(
    threads: Sequence[threading.Thread],
    go: threading.Event,
    check: Callable[[], None],
    errors: list[BaseException],
    done_at: list[float],
    settle_s: float = 0.0,
) -> SendResult:
    """Start the sender threads, wait `settle_s`, start the clock and `go`, join them.

    Each thread waits for `go`, appends its finish time to `done_at` or its
    exception to `errors`. `check` runs every 0.5 s meanwhile.
    """
    for t in threads:
        t.start()
    time.sleep(settle_s)
    t0 = time.perf_counter()
    go.set()
    for t in threads:
        while t.is_alive():
            t.join(0.5)
            check()
    if errors:
        raise BenchError(f"sending failed: {errors[0]!r}")
    return SendResult(t0=t0, sent_s=max(done_at) - t0)


# --------------------------------------------------------------------------- results


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
    cpu_s: float | None = None  # the server's CPU seconds over the timed part


def reference_dir(nbytes: int) -> Path:
    """Where the references write: tmpfs when it has room, else bench/out."""
    shm = Path("/dev/shm")
    with contextlib.suppress(OSError):
        if shm.is_dir() and shutil.disk_usage(shm).free > 2 * nbytes:
            return shm
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    return OUT_DIR


def fmt_int(x: float | None) -> str:
    """Table cells: "-" for a missing figure."""
    return "-" if x is None else f"{x:,.0f}"


def fmt_1(x: float | None) -> str:
    return "-" if x is None else f"{x:,.1f}"


def fmt_2(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def parse_count(text: str) -> int:
    """A line count option: `1000000`, `1_000_000`, `1000k` or `1M` (at least 1,000)."""
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


def _number(
    text: str, convert: Callable[[str], float], ok: Callable[[float], bool], need: str
) -> float:
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"must be {need}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    return int(_number(text, int, lambda v: v >= 1, ">= 1"))


def non_negative_int(text: str) -> int:
    """An argparse type: an integer of at least 0."""
    return int(_number(text, int, lambda v: v >= 0, ">= 0"))


def positive_float(text: str) -> float:
    """An argparse type: a number above 0."""
    return _number(text, float, lambda v: v > 0, "> 0")


def aligned_table(rows: list[tuple[str, ...]], left: int = 1) -> list[str]:
    """Aligned columns; the first `left` ones are text (left-aligned), the rest figures."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for i, row in enumerate(rows):
        cells = [
            c.ljust(w) if k < left else c.rjust(w)
            for k, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return out


def host_info() -> dict[str, object]:
    """The machine a JSON report was measured on."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
