"""One overload run, measured: flood, sample, settle, count, check (bench/overload).

Per policy: starts the slow receiver and the server (bench/_overload_scenario.py),
sends the corpus over its connections as fast as the server reads, samples the
server's RSS and STATS every 50 ms in a thread (`Monitor`), waits until the
server holds nothing and the receiver has what was forwarded, then records the
figures and the checks (accounting, forwarded = received, every ERROR kept with
`sample`) in a `PolicyRun`, and stops the server with SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _common import MB, BenchError, log, send_parts_to, vm_hwm
from _overload_scenario import (
    BATCH_EVENTS,
    BUFFER_EVENTS,
    CONNECTIONS,
    QUEUE_EVENTS,
    Corpus,
    SlowSink,
    server_config,
    start_server,
)

if TYPE_CHECKING:
    from logcaster.testing import ServerProcess

SAMPLE_S = 0.050  # RSS and STATS sampling interval
SEND_STALL_S = 120.0  # a sender that cannot send a byte for this long fails the run
STABLE_S = 5.0  # Total unchanged this long after the senders closed: it is final
STOP_TIMEOUT_S = 30.0
SEND_CHUNK = 1 << 16  # small sends: the sender's clock follows the server's reads


def accounted(s: dict[str, float]) -> float:
    """What STATS says is delivered, queued, dropped or sampled."""
    return s["Delivered"] + s["Dropped"] + s["Sampled"] + s["QueueEvents"]


class Monitor:
    """Samples the server's RSS and STATS every SAMPLE_S in a thread."""

    def __init__(self, server: ServerProcess) -> None:
        import psutil

        self._server = server
        self._proc = psutil.Process(server.pid)
        self.rss_start = self._proc.memory_info().rss
        self.rss_max = self.rss_start
        self.samples = 0
        self.peak_queue = 0.0
        self.peak_buffered = 0.0
        self.unaccounted: list[dict[str, float]] = []  # samples where the sum did not hold
        self.last: dict[str, float] = {}
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="monitor")
        self._thread.start()

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                self.rss_max = max(self.rss_max, self._proc.memory_info().rss)
                s = self._server.stats()
            except (OSError, ValueError, psutil.Error) as exc:
                if self._server.proc.poll() is not None:
                    return
                self.errors.append(repr(exc))
            else:
                self.samples += 1
                self.last = s
                self.peak_queue = max(self.peak_queue, s["QueueEvents"])
                self.peak_buffered = max(self.peak_buffered, s.get("ForwardBuffered", 0.0))
                if accounted(s) != s["Total"] and len(self.unaccounted) < 10:
                    self.unaccounted.append(s)
            self._stop.wait(SAMPLE_S)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def send(port: int, corpus: Corpus, check_alive: ServerProcess) -> tuple[float, float]:
    """Each part over its own connection at once: (t0, seconds until the last one closed)."""

    def check() -> None:
        if check_alive.proc.poll() is not None:
            raise BenchError(f"logcaster exited with status {check_alive.proc.returncode}")

    parts = [memoryview(p) for p in corpus.parts]
    # block may pause a sender, never this long
    result = send_parts_to([port] * len(parts), parts, check, stall_s=SEND_STALL_S)
    return result.t0, result.sent_s


# --------------------------------------------------------------------------- one run


@dataclass
class PolicyRun:
    policy: str
    values: dict[str, float] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _settle(
    server: ServerProcess, sink: SlowSink, lines: int, timeout_s: float
) -> tuple[dict[str, float], dict[str, Any], bool]:
    """Wait until the server holds nothing and the receiver has what was forwarded:
    (the last STATS, the receiver's counts, whether it settled)."""
    deadline = time.monotonic() + timeout_s
    last_total = -1.0
    changed_at = time.monotonic()
    while True:
        if server.proc.poll() is not None:
            raise BenchError(f"logcaster exited with status {server.proc.returncode}")
        s = server.stats()
        got = sink.stats()
        now = time.monotonic()
        if s["Total"] != last_total:
            last_total, changed_at = s["Total"], now
        empty = (
            s["QueueEvents"] == 0
            and s.get("ForwardBuffered", 0.0) == 0
            and s["Total"] == s["Delivered"] + s["Dropped"] + s["Sampled"]
            and got["events"] >= s.get("Forwarded", 0.0)
        )
        complete = s["Total"] >= lines or now - changed_at > STABLE_S
        if empty and complete:
            return s, got, True
        if now > deadline:
            return s, got, False
        time.sleep(SAMPLE_S)


def run_policy(policy: str, args: argparse.Namespace, corpus: Corpus, tmp: Path) -> PolicyRun:
    run = PolicyRun(policy)
    v = run.values
    sink = SlowSink(args.delay_ms)
    server: ServerProcess | None = None
    try:
        config_path = tmp / f"overload-{policy}.json"  # JSON is YAML
        config_path.write_text(json.dumps(server_config(policy, sink.url), indent=2))
        server = start_server(config_path)
        monitor = Monitor(server)
        try:
            t0, sent_s = send(server.ingest_port, corpus, server)
            v["read_when_sent"] = server.stats()["Total"]
            capacity = BATCH_EVENTS * 1000.0 / args.delay_ms
            timeout_s = 60.0 + 3 * (QUEUE_EVENTS + 2 * BUFFER_EVENTS) / capacity
            s, got, settled = _settle(server, sink, corpus.lines, timeout_s)
            settled_s = time.perf_counter() - t0
        finally:
            monitor.stop()
        time.sleep(0.2)  # the receiver answers after counting: let Forwarded catch up
        s = server.stats()
        got = sink.stats()
        seen = sink.seen()
        hwm = vm_hwm(server.pid)
        v["sent_s"] = sent_s
        v["settled_s"] = settled_s
        for key in ("Total", "Delivered", "Forwarded", "Dropped", "Sampled", "HighWatermark"):
            v[key] = s.get(key, 0.0)
        for key, n in s.items():
            if key.startswith("Dropped") and key != "Dropped":
                v[key] = n
        v["QueuePeakEvents"] = max(s["QueuePeakEvents"], monitor.peak_queue)
        v["ForwardBufferedPeak"] = monitor.peak_buffered
        v["sink_events"] = got["events"]
        v["sink_duplicates"] = got["duplicates"]
        v["errors_sent"] = corpus.errors
        v["sink_errors"] = got["errors"]
        v["rss_start_mb"] = monitor.rss_start / MB
        v["rss_max_mb"] = monitor.rss_max / MB
        if hwm is not None:
            v["rss_hwm_mb"] = hwm / MB
        busy = (got["last_at"] or 0.0) - (got["first_at"] or 0.0)
        v["forward_rate"] = got["events"] / busy if busy > 0 else 0.0
        v["capacity"] = capacity
        v["rate_ratio"] = v["forward_rate"] / capacity
        v["posts"] = got["posts"]
        v["post_mean"] = got["events"] / got["posts"] if got["posts"] else 0.0
        v["post_max"] = got["max_post"]
        # What the sink could take at the POST sizes the server really sent.
        v["rate_ratio_posts"] = v["forward_rate"] / (v["post_mean"] * 1000.0 / args.delay_ms or 1)
        tenths = _coverage(seen, corpus)
        v["first_10pct"] = tenths[0]
        v["last_10pct"] = tenths[-1]
        for k, share in enumerate(tenths):
            v[f"tenth_{k}"] = share  # in the JSON document only
        v["samples"] = monitor.samples
        # -- checks
        run.checks["settled"] = settled
        run.checks["accounting"] = (
            not monitor.unaccounted and accounted(s) == s["Total"] and s["Total"] == corpus.lines
        )
        run.checks["forwarded"] = (
            s.get("Forwarded", 0.0) == got["events"] and got["duplicates"] == 0
        )
        if policy == "sample":
            run.checks["errors_kept"] = got["errors"] == corpus.errors
        if not settled:
            run.warnings.append(
                f"not settled within {timeout_s:.0f} s: Total={s['Total']:,.0f} "
                f"Delivered={s['Delivered']:,.0f} Dropped={s['Dropped']:,.0f} "
                f"Sampled={s['Sampled']:,.0f} QueueEvents={s['QueueEvents']:,.0f} "
                f"ForwardBuffered={s.get('ForwardBuffered', 0):,.0f}"
            )
        for bad in monitor.unaccounted[:3]:
            run.warnings.append(
                f"Total={bad['Total']:,.0f} but Delivered+Dropped+Sampled+QueueEvents="
                f"{accounted(bad):,.0f} during the run"
            )
        if s["Total"] != corpus.lines:
            run.warnings.append(f"Total={s['Total']:,.0f}, {corpus.lines:,} lines were sent")
        if accounted(s) != s["Total"]:
            run.warnings.append(f"final Total={s['Total']:,.0f} but the sum is {accounted(s):,.0f}")
        if not run.checks["forwarded"]:
            run.warnings.append(
                f"Forwarded={s.get('Forwarded', 0):,.0f} but the receiver counted "
                f"{got['events']:,} events ({got['duplicates']:,} duplicates)"
            )
        if monitor.errors:
            run.warnings.append(f"{len(monitor.errors)} STATS samples failed: {monitor.errors[0]}")
        # -- graceful stop
        stop_at = time.monotonic()
        try:
            code = server.stop(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            code = None
            run.warnings.append(f"no exit within {STOP_TIMEOUT_S:g} s of SIGTERM")
        v["stop_s"] = time.monotonic() - stop_at
        if code != 0:
            run.warnings.append(f"server exit status {code} after SIGTERM")
        return run
    except BaseException:
        if server is not None:
            err = b"".join(server.raw_stderr[-20:]).decode(errors="replace")
            if err:
                log(f"logcaster's last log lines:\n{err}")
        raise
    finally:
        if server is not None:
            server.kill()
        sink.close()


def _coverage(seen: Sequence[tuple[int, int]], corpus: Corpus) -> list[float]:
    """Per tenth of each connection's lines (oldest first): the share that reached the sink."""
    got = [0] * 10
    sent = [0] * 10
    sizes = [corpus.per_connection(c) for c in range(CONNECTIONS)]
    for n in sizes:
        for k in range(10):
            sent[k] += (k + 1) * n // 10 - k * n // 10
    for c, i in seen:
        if 0 <= c < CONNECTIONS and 0 <= i < sizes[c]:
            k = i * 10 // sizes[c]
            while (k + 1) * sizes[c] // 10 <= i:  # the tenth whose range holds i
                k += 1
            while k * sizes[c] // 10 > i:
                k -= 1
            got[k] += 1
    return [g / n if n else 0.0 for g, n in zip(got, sent, strict=True)]
