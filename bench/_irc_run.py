"""One run of bench/irc: a fresh `logcaster serve`, with or without IRC clients.

The server is started and stopped as bench/ingest does (bench/_ingest_run.py);
with IRC on it also gets `irc.enabled` and `irc.port` 0 (the environment's
LOGCASTER_IRC__*, as `-I 0` does), and the IRC port is read from its `ready`
line. `IrcClients` are raw sockets: each registers (NICK, USER) and joins
#logs-all, waits for the end of its NAMES list, and from then on either reads
everything it is sent (one thread reads every reading client, counts lines and
answers PING) or, a stalled client, never reads again.

Two kinds of run:
- `run_max`: the corpus at full speed over TCP with bench/ingest's machinery
  (`send_parts`, `wait_total`), timed as bench/ingest times it;
- `run_paced`: events at a fixed rate (the corpus, cycled if it is short, sent
  over one connection in pieces cut at line ends, every few milliseconds as
  the clock says) for a number of seconds, then how long the server took to
  deliver the rest (the lag at the end), its CPU share, and its memory:
  VmRSS sampled every `RSS_EVERY_S`, and VmHWM.

Afterwards, untimed: the server's STATS (IrcLinesSent, IrcSkipped, IrcClients)
and its `GET /metrics` (IrcSkipped by reason, irc_disconnects by reason). The
clients close before the server is stopped.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import re
import selectors
import socket
import struct
import termios
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import _corpus
from _common import MB, BenchError, cpu_seconds, send_parts, vm_hwm
from _ingest_run import (
    Server,
    finish_logcaster,
    settle,
    start_logcaster,
    stop_logcaster,
    wait_total,
)
from _query_port import parse_stats, query, stat_int, total_of

CHANNEL = "#logs-all"
JOIN_TIMEOUT_S = 30.0  # for every client to be registered and in the channel
PER_IP_DEFAULT = 50  # irc.max_clients_per_ip's default: more clients need it off
PACE_TICK_S = 0.005  # the paced sender looks at the clock this often
RSS_EVERY_S = 0.2
PACED_DRAIN_S = 60.0  # after the paced sending, for every event to be delivered
SETTLE_S = 0.5  # after the clients joined, before the clock

_METRIC = re.compile(
    rb'^logcaster_irc_(skipped_lines|disconnects)_total\{reason="([^"]*)"\} (\S+)$', re.M
)
_PING = re.compile(rb"^PING( .*?)\r?$", re.M)
_END_OF_NAMES = re.compile(rb"^:\S+ 366 \S+ " + re.escape(CHANNEL.encode()) + rb" .*\n", re.M)


def irc_env(clients: int) -> dict[str, str]:
    """The server's settings with IRC on (every other IRC setting at its default)."""
    env = {"LOGCASTER_IRC__ENABLED": "true", "LOGCASTER_IRC__PORT": "0"}
    if clients > PER_IP_DEFAULT:
        env["LOGCASTER_IRC__MAX_CLIENTS_PER_IP"] = "0"  # all of them come from 127.0.0.1
    return env


def irc_port(server: Server) -> int:
    """The IRC port in the server's `ready` log line."""
    for line in server.log_path.read_bytes().splitlines():
        with contextlib.suppress(ValueError):
            doc = json.loads(line)
            if isinstance(doc, dict) and doc.get("event") == "ready":
                port = doc.get("ports", {}).get("irc")
                if port is None:
                    raise BenchError("logcaster's ready line names no irc port")
                return int(port)
    raise BenchError("no ready line in logcaster's log")


def vm_rss(pid: int) -> int | None:
    """Resident set size of `pid` in bytes now (VmRSS)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def irc_metrics(http_port: int) -> dict[str, dict[str, int]]:
    """`GET /metrics`: {"skipped": {reason: n}, "disconnects": {reason: n}}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=10) as r:
        body: bytes = r.read()
    out: dict[str, dict[str, int]] = {"skipped": {}, "disconnects": {}}
    for name, reason, value in _METRIC.findall(body):
        kind = "skipped" if name == b"skipped_lines" else "disconnects"
        out[kind][reason.decode()] = int(float(value))
    return out


# --------------------------------------------------------------------------- the clients


class IrcClients:
    """`n` raw-socket IRC clients in #logs-all; the last `stalled` never read after joining."""

    def __init__(self, port: int, n: int, stalled: int, check: Callable[[], None]) -> None:
        self.socks: list[socket.socket] = []
        self.n_reading = n - stalled
        self.lines = [0] * n  # lines each client read (after joining)
        self.channel_lines = [0] * n  # of those, PRIVMSGs to the channel (LogBot's log lines)
        self.closed_by_server = 0  # reading clients the server closed
        self._rest = [b""] * n
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        try:
            for i in range(n):
                sock = socket.create_connection(("127.0.0.1", port), timeout=JOIN_TIMEOUT_S)
                self.socks.append(sock)
                sock.sendall(f"NICK bench{i}\r\nUSER bench{i} 0 * :bench/irc\r\n".encode())
                sock.sendall(f"JOIN {CHANNEL}\r\n".encode())
            deadline = time.monotonic() + JOIN_TIMEOUT_S
            for i, sock in enumerate(self.socks):
                self._rest[i] = self._joined(sock, deadline, check)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _joined(sock: socket.socket, deadline: float, check: Callable[[], None]) -> bytes:
        """Read until the channel's end of NAMES (366): what came after it."""
        buf = b""
        while True:
            names_end = _END_OF_NAMES.search(buf)
            if names_end is not None:
                return buf[names_end.end() :]
            if buf.startswith(b"ERROR ") or b"\nERROR " in buf:
                raise BenchError(f"the IRC server refused a client: {buf[-300:]!r}")
            if time.monotonic() > deadline:
                raise BenchError(f"an IRC client was not in {CHANNEL} within {JOIN_TIMEOUT_S:g} s")
            check()
            sock.settimeout(max(0.1, min(1.0, deadline - time.monotonic())))
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                raise BenchError(f"the IRC server closed a client while joining: {buf[-300:]!r}")
            buf += data

    def start(self) -> None:
        """Start reading: every reading client, on one thread."""
        self._thread = threading.Thread(target=self._read_all, daemon=True, name="irc-readers")
        self._thread.start()

    def _read_all(self) -> None:
        sel = selectors.DefaultSelector()
        try:
            for i in range(self.n_reading):
                sock = self.socks[i]
                sock.setblocking(False)
                sel.register(sock, selectors.EVENT_READ, i)
                if self._rest[i]:
                    self._take(i, b"")
            while not self._stop.is_set():
                for key, _ in sel.select(0.1):
                    i = key.data
                    sock = self.socks[i]
                    try:
                        data = sock.recv(262144)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        sel.unregister(sock)
                        self.closed_by_server += 1
                        continue
                    self._take(i, data)
        except BaseException as exc:
            self._error = exc
        finally:
            sel.close()

    def _take(self, i: int, data: bytes) -> None:
        buf = self._rest[i] + data
        cut = buf.rfind(b"\n") + 1
        whole, self._rest[i] = buf[:cut], buf[cut:]
        if not whole:
            return
        self.lines[i] += whole.count(b"\n")
        self.channel_lines[i] += whole.count(b" PRIVMSG " + CHANNEL.encode() + b" :")
        if b"PING" in whole:
            for m in _PING.finditer(whole):
                with contextlib.suppress(OSError):
                    self.socks[i].sendall(b"PONG" + m.group(1) + b"\r\n")

    def snapshot(self) -> tuple[int, int]:
        """(lines, channel lines) the reading clients have read so far, summed."""
        return sum(self.lines), sum(self.channel_lines)

    def unread_bytes(self) -> int:
        """Bytes waiting unread in the stalled clients' sockets (FIONREAD)."""
        total = 0
        for sock in self.socks[self.n_reading :]:
            with contextlib.suppress(OSError):
                raw = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
                total += struct.unpack("i", raw)[0]
        return total

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        for sock in self.socks:
            with contextlib.suppress(OSError):
                sock.close()
        self.socks = []
        if self._error is not None:
            raise BenchError(f"reading the IRC clients failed: {self._error!r}")


# --------------------------------------------------------------------------- results


@dataclass
class IrcCounters:
    """What the server says about its IRC side, read after the run."""

    lines_sent: int | None = None  # STATS IrcLinesSent
    skipped: int | None = None  # STATS IrcSkipped (every reason)
    clients_at_end: int | None = None  # STATS IrcClients
    skipped_by: dict[str, int] = field(default_factory=dict)  # /metrics, by reason
    disconnects: dict[str, int] = field(default_factory=dict)  # /metrics, by reason


def _counters(server: Server) -> IrcCounters:
    """STATS and GET /metrics, one right after the other."""
    stats = parse_stats(query(server.query_port, "STATS"))
    metrics = irc_metrics(server.http_port)
    return IrcCounters(
        lines_sent=stat_int(stats, "IrcLinesSent"),
        skipped=stat_int(stats, "IrcSkipped"),
        clients_at_end=stat_int(stats, "IrcClients"),
        skipped_by=metrics["skipped"],
        disconnects=metrics["disconnects"],
    )


@dataclass
class MaxRun:
    """The corpus at full speed, IRC off or on with `clients` IRC clients in #logs-all."""

    irc_on: bool
    clients: int
    seconds: float
    events_per_s: float
    lines_per_s: float
    mb_per_s: float
    sent_s: float
    cpu_s: float | None  # the server's CPU seconds over the timed part
    total: int
    peak_rss_bytes: int | None
    lines_read: int  # lines the clients read over the timed part, all clients
    channel_lines_read: int  # of those, LogBot's lines in the channel
    irc: IrcCounters | None
    exit_code: int | None
    warnings: list[str] = field(default_factory=list)


@dataclass
class PacedRun:
    """Events at `rate` a second for `seconds`, with `clients` IRC clients of which
    `stalled` never read (clients 0: IRC off)."""

    clients: int
    stalled: int
    rate: float
    seconds: float  # planned
    send_s: float  # first byte to last byte sent
    sent_events_per_s: float  # the events the server counted over send_s
    events: int  # the events the server counted in the end
    delivered_at_end: int  # STATS Delivered when the last byte was sent
    lag_s: float  # from the last byte sent to every event delivered
    queue_peak: int | None  # STATS QueuePeakEvents
    cpu_s: float | None  # the server's CPU seconds, first byte to every event delivered
    cpu_pct: float | None  # the same over the wall seconds
    rss_start: int | None  # VmRSS just before the first byte
    rss_max: int | None  # the most VmRSS sampled, first byte to every event delivered
    rss_end: int | None  # VmRSS once every event was delivered
    peak_rss_bytes: int | None  # VmHWM then (the server's whole life)
    rss_series: list[tuple[float, int]]  # (seconds from the first byte, VmRSS), one a second
    lines_read: int  # lines the reading clients read, first byte to the end
    channel_lines_read: int
    unread_bytes: int  # bytes the stalled clients left unread in their sockets
    irc: IrcCounters | None
    exit_code: int | None
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- runs


def _start(server_cmd: Sequence[str], irc_on: bool, clients: int) -> tuple[Server, int | None]:
    server = start_logcaster(server_cmd, env_extra=irc_env(clients) if irc_on else None)
    try:
        return server, irc_port(server) if irc_on else None
    except BaseException:
        finish_logcaster(server, True)
        raise


def run_max(
    server_cmd: Sequence[str],
    corpus: _corpus.CorpusInfo,
    parts: Sequence[memoryview],
    timeout_s: float,
    irc_on: bool,
    clients: int,
) -> MaxRun:
    server, port = _start(server_cmd, irc_on, clients)
    irc: IrcClients | None = None
    failed = True
    try:
        if port is not None and clients:
            irc = IrcClients(port, clients, 0, server.check)
            irc.start()
            time.sleep(SETTLE_S)
        expected = corpus.events
        warnings: list[str] = []
        read0 = irc.snapshot() if irc else (0, 0)
        cpu0 = cpu_seconds(server.proc.pid)
        sent = send_parts(server.ingest_port, parts, server.check)
        stats, end = wait_total(
            server.query_port, sent.t0, expected, timeout_s, server.check, warnings
        )
        seconds = end - sent.t0
        cpu1 = cpu_seconds(server.proc.pid)
        read1 = irc.snapshot() if irc else (0, 0)
        # Untimed from here.
        stats = settle(server.query_port, stats, server.check)
        counters = None
        if irc_on:
            counters = _counters(server)
        if irc is not None and counters is not None:
            _check_clients(irc, counters, warnings)
            irc.close()
            irc = None
        total = total_of(stats)
        if total != expected:
            warnings.append(f"final Total={total:,}, expected {expected:,} events")
        dropped = stat_int(stats, "Dropped")
        if dropped:
            warnings.append(f"server dropped {dropped:,} events")
        rss = vm_hwm(server.proc.pid)
        code = stop_logcaster(server, warnings)
        failed = False
        return MaxRun(
            irc_on=irc_on,
            clients=clients,
            seconds=seconds,
            events_per_s=corpus.events / seconds,
            lines_per_s=corpus.lines / seconds,
            mb_per_s=corpus.nbytes / seconds / MB,
            sent_s=sent.sent_s,
            cpu_s=None if cpu0 is None or cpu1 is None else cpu1 - cpu0,
            total=total,
            peak_rss_bytes=rss,
            lines_read=read1[0] - read0[0],
            channel_lines_read=read1[1] - read0[1],
            irc=counters,
            exit_code=code,
            warnings=warnings,
        )
    finally:
        if irc is not None:
            with contextlib.suppress(BenchError):
                irc.close()
        finish_logcaster(server, failed)


def _check_clients(irc: IrcClients, counters: IrcCounters, warnings: list[str]) -> None:
    if irc.closed_by_server:
        warnings.append(f"the server closed {irc.closed_by_server} reading IRC clients")
    if counters.disconnects:
        warnings.append(f"IRC disconnects: {counters.disconnects}")


def paced_payload(data: bytes, bytes_needed: int) -> bytes:
    """The corpus, cycled when it is shorter, up to the first line end past `bytes_needed`."""
    if not data.endswith(b"\n"):
        raise BenchError("the corpus does not end with a line end")
    reps = bytes_needed // len(data) + 1
    whole = data * reps if reps > 1 else data
    cut = whole.find(b"\n", max(0, bytes_needed - 1))
    return whole[: cut + 1] if cut >= 0 else whole


@dataclass
class _Paced:
    t0: float
    t_end: float  # after the last byte was handed to the kernel


def _send_paced(port: int, payload: bytes, bytes_per_s: float, check: Callable[[], None]) -> _Paced:
    """Send `payload` over one connection at `bytes_per_s`, in pieces cut at line ends;
    a sender held up by the server catches up as fast as it can."""
    sock = socket.create_connection(("127.0.0.1", port))
    view = memoryview(payload)
    try:
        t0 = time.perf_counter()
        off = 0
        checked = t0
        n = len(payload)
        while off < n:
            now = time.perf_counter()
            target = min(n, int((now - t0) * bytes_per_s))
            if target > off:
                cut = payload.find(b"\n", max(off, target - 1))
                end = n if cut < 0 else cut + 1
                sock.sendall(view[off:end])
                off = end
            else:
                time.sleep(PACE_TICK_S)
            if now - checked > 0.5:
                check()
                checked = now
        t_end = time.perf_counter()
        sock.shutdown(socket.SHUT_WR)
        return _Paced(t0, t_end)
    finally:
        sock.close()


class _RssSampler:
    """VmRSS of a process, every RSS_EVERY_S on a thread: the most seen, and one
    sample a second (seconds since the start, bytes) to show its course."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.most: int | None = None
        self.series: list[tuple[float, int]] = []
        self._t0 = time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss")
        self._thread.start()

    def _run(self) -> None:
        while True:
            rss = vm_rss(self.pid)
            if rss is not None and (self.most is None or rss > self.most):
                self.most = rss
            at = time.perf_counter() - self._t0
            if rss is not None and (not self.series or at - self.series[-1][0] >= 1.0):
                self.series.append((round(at, 1), rss))
            if self._stop.wait(RSS_EVERY_S):
                return

    def stop(self) -> int | None:
        self._stop.set()
        self._thread.join(5)
        rss = vm_rss(self.pid)
        if rss is not None and (self.most is None or rss > self.most):
            self.most = rss
        return self.most


def _wait_delivered(
    query_port: int, t_end: float, check: Callable[[], None], warnings: list[str]
) -> tuple[dict[str, str], float]:
    """Poll STATS until the connection has ended and every event is delivered (the
    paced sender's count is not known beforehand: a multi-line block is one event)."""
    deadline = t_end + PACED_DRAIN_S
    while True:
        check()
        stats = parse_stats(query(query_port, "STATS"))
        now = time.perf_counter()
        received = stat_int(stats, "Total") or 0
        delivered = stat_int(stats, "Delivered")
        done = delivered is None or delivered + (stat_int(stats, "Dropped") or 0) >= received
        if not stat_int(stats, "Clients") and done:
            return stats, now
        if now > deadline:
            warnings.append(f"not every event delivered {PACED_DRAIN_S:g} s after the last byte")
            return stats, now
        time.sleep(0.01)


def run_paced(
    server_cmd: Sequence[str],
    payload: bytes,
    rate: float,
    seconds: float,
    clients: int,
    stalled: int,
) -> PacedRun:
    server, port = _start(server_cmd, clients > 0, clients)
    irc: IrcClients | None = None
    failed = True
    try:
        if port is not None:
            irc = IrcClients(port, clients, stalled, server.check)
            irc.start()
            time.sleep(SETTLE_S)
        warnings: list[str] = []
        pid = server.proc.pid
        read0 = irc.snapshot() if irc else (0, 0)
        rss0 = vm_rss(pid)
        sampler = _RssSampler(pid)
        cpu0 = cpu_seconds(pid)
        paced = _send_paced(server.ingest_port, payload, len(payload) / seconds, server.check)
        at_end = parse_stats(query(server.query_port, "STATS"))
        stats, done = _wait_delivered(server.query_port, paced.t_end, server.check, warnings)
        cpu1 = cpu_seconds(pid)
        rss_max = sampler.stop()
        rss_end = vm_rss(pid)
        hwm = vm_hwm(pid)
        read1 = irc.snapshot() if irc else (0, 0)
        counters = None
        unread = 0
        if irc is not None:
            unread = irc.unread_bytes()
            counters = _counters(server)
            if irc.closed_by_server:
                warnings.append(f"the server closed {irc.closed_by_server} reading IRC clients")
            irc.close()
            irc = None
        events = total_of(stats)
        dropped = stat_int(stats, "Dropped")
        if dropped:
            warnings.append(f"server dropped {dropped:,} events")
        code = stop_logcaster(server, warnings)
        failed = False
        send_s = paced.t_end - paced.t0
        wall = done - paced.t0
        cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
        return PacedRun(
            clients=clients,
            stalled=stalled if clients else 0,
            rate=rate,
            seconds=seconds,
            send_s=send_s,
            sent_events_per_s=events / send_s,
            events=events,
            delivered_at_end=total_of(at_end),
            lag_s=max(0.0, done - paced.t_end),
            queue_peak=stat_int(stats, "QueuePeakEvents"),
            cpu_s=cpu,
            cpu_pct=None if cpu is None else 100.0 * cpu / wall,
            rss_start=rss0,
            rss_max=rss_max,
            rss_end=rss_end,
            peak_rss_bytes=hwm,
            rss_series=sampler.series,
            lines_read=read1[0] - read0[0],
            channel_lines_read=read1[1] - read0[1],
            unread_bytes=unread,
            irc=counters,
            exit_code=code,
            warnings=warnings,
        )
    finally:
        if irc is not None:
            with contextlib.suppress(BenchError):
                irc.close()
        finish_logcaster(server, failed)
