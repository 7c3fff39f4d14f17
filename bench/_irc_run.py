"""One run of bench/irc: a fresh `logcaster serve`, with or without IRC clients.

The server is started and stopped as bench/ingest does (bench/_ingest_run.py);
with IRC on it also gets `irc.enabled` and `irc.port` 0 (the environment's
LOGCASTER_IRC__*, as `-I 0` does), and the IRC port is read from its `ready`
line. The clients are bench/_irc_clients.py's `IrcClients`, joined before the
clock starts.

Two kinds of run:
- `run_max`: the corpus at full speed over TCP with bench/ingest's machinery
  (`send_parts`, `wait_total`), timed as bench/ingest times it;
- `run_paced`: events at a fixed rate for a number of seconds (bench/_irc_paced.py
  sends them and samples VmRSS meanwhile), then how long the server took to
  deliver the rest (the lag at the end), its CPU share, and its memory.

Afterwards, untimed: the server's STATS (IrcLinesSent, IrcSkipped, IrcClients)
and its `GET /metrics` (IrcSkipped by reason, irc_disconnects by reason). The
clients close before the server is stopped. This module holds the runs, their
results (`MaxRun`, `PacedRun`, `IrcCounters`) and the server's IRC settings.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import urllib.request
from collections.abc import Sequence
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
from _irc_clients import IrcClients
from _irc_paced import RssSampler, send_paced, vm_rss, wait_delivered
from _query_port import parse_stats, query, stat_int, total_of

PER_IP_DEFAULT = 50  # irc.max_clients_per_ip's default: more clients need it off
SETTLE_S = 0.5  # after the clients joined, before the clock

_METRIC = re.compile(
    rb'^logcaster_irc_(skipped_lines|disconnects)_total\{reason="([^"]*)"\} (\S+)$', re.M
)


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


def irc_metrics(http_port: int) -> dict[str, dict[str, int]]:
    """`GET /metrics`: {"skipped": {reason: n}, "disconnects": {reason: n}}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=10) as r:
        body: bytes = r.read()
    out: dict[str, dict[str, int]] = {"skipped": {}, "disconnects": {}}
    for name, reason, value in _METRIC.findall(body):
        kind = "skipped" if name == b"skipped_lines" else "disconnects"
        out[kind][reason.decode()] = int(float(value))
    return out


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
        sampler = RssSampler(pid)
        cpu0 = cpu_seconds(pid)
        paced = send_paced(server.ingest_port, payload, len(payload) / seconds, server.check)
        at_end = parse_stats(query(server.query_port, "STATS"))
        stats, done = wait_delivered(server.query_port, paced.t_end, server.check, warnings)
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
