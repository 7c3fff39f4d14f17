"""LogCaster overload benchmark (run it as `bench/overload`; see `bench/overload --help`).

A slow sink, each queue policy: what is dropped, by reason, and how much memory.

Per policy and run: a fresh slow HTTP NDJSON receiver (bench/_slow_sink.py,
its own process: it sleeps `--delay-ms` per POST and counts the JSON lines it
gets) and a fresh `logcaster serve` forwarding to it (one forward group,
`batch_events` 500, `max_in_flight` 1, `buffer_events` 5,000; no persistence,
so no spool: a full group outbox blocks the pipeline worker, the queue of
20,000 events fills and the queue policy acts). A sender floods the server
with `--lines` lines over 2 TCP connections (1 line in 10 is ERROR) as fast
as the server reads them, while the server's RSS (psutil) and STATS are
sampled every 50 ms. Then the bench waits until the server holds nothing
(Total = Delivered + Dropped + Sampled, QueueEvents = 0, ForwardBuffered = 0)
and the receiver has everything the server counts as forwarded.

Checked per run (the exit status is 1 when one fails):
- accounting: Total = Delivered + Dropped + Sampled + QueueEvents at every
  STATS sample, and Total = lines sent at the end;
- Forwarded = the events the receiver counted (and no duplicates);
- sample: every ERROR line sent reached the receiver.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from _common import (
    BENCH_DIR,
    CHILDREN,
    MB,
    OUT_DIR,
    REPO,
    BenchError,
    fmt_1,
    fmt_2,
    fmt_int,
    log,
    parse_count,
    positive_int,
    send_parts_to,
    vm_hwm,
)

if TYPE_CHECKING:
    from logcaster.testing import ServerProcess

POLICIES = ("block", "drop_newest", "drop_oldest", "reject", "sample")
CONNECTIONS = 2
ERROR_EVERY = 10  # 1 line in 10 is an ERROR line
QUEUE_EVENTS = 20_000
BATCH_EVENTS = 500
MAX_IN_FLIGHT = 1
BUFFER_EVENTS = 5_000
SAMPLE_S = 0.050  # RSS and STATS sampling interval
SEND_STALL_S = 120.0  # a sender that cannot send a byte for this long fails the run
STABLE_S = 5.0  # Total unchanged this long after the senders closed: it is final
SINK_READY_S = 20.0
STOP_TIMEOUT_S = 30.0
SEND_CHUNK = 1 << 16  # small sends: the sender's clock follows the server's reads


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _ensure_venv() -> None:
    """Re-run under the repository's venv when LogCaster, aiohttp or psutil is missing."""
    try:
        import aiohttp  # noqa: F401
        import psutil  # noqa: F401

        import logcaster  # noqa: F401
    except ImportError as exc:
        venv = REPO / ".venv"
        python = venv / "bin" / "python"
        here = Path(sys.prefix).resolve()
        if python.exists() and here != venv.resolve() and not os.environ.get("_OVERLOAD_REEXEC"):
            os.environ["_OVERLOAD_REEXEC"] = "1"
            os.execv(str(python), [str(python), *sys.argv])
        raise BenchError(f"{exc}: run it with {python} (`make install` creates it)") from exc


# --------------------------------------------------------------------------- the corpus


@dataclass
class Corpus:
    parts: list[bytes]  # one per connection
    lines: int
    errors: int  # ERROR lines among them

    def per_connection(self, c: int) -> int:
        return self.lines // CONNECTIONS + (1 if c < self.lines % CONNECTIONS else 0)


def make_corpus(lines: int) -> Corpus:
    """`2026-11-28T10:00:00Z LEVEL svc msg c=C i=I`: the parser takes the level after the
    timestamp; `c` (connection) and `i` (index on it) say which lines reached the sink."""
    parts: list[bytes] = []
    errors = 0
    for c in range(CONNECTIONS):
        n = lines // CONNECTIONS + (1 if c < lines % CONNECTIONS else 0)
        out = []
        for i in range(n):
            level = "ERROR" if i % ERROR_EVERY == 0 else "INFO"
            out.append(f"2026-11-28T10:00:00Z {level} svc msg c={c} i={i}\n")
        errors += (n + ERROR_EVERY - 1) // ERROR_EVERY
        parts.append("".join(out).encode())
    return Corpus(parts, lines, errors)


# --------------------------------------------------------------------------- the slow sink


class SlowSink:
    """bench/_slow_sink.py in its own process."""

    def __init__(self, delay_ms: float) -> None:
        cmd = [sys.executable, str(BENCH_DIR / "_slow_sink.py"), "--delay-ms", str(delay_ms)]
        self.proc = CHILDREN.spawn(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], SINK_READY_S)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            self.close()
            raise BenchError("the slow sink did not start")
        self.port = int(json.loads(line)["port"])
        self.url = f"http://127.0.0.1:{self.port}/ingest"

    def _get(self, path: str) -> Any:
        if self.proc.poll() is not None:
            raise BenchError(f"the slow sink exited with status {self.proc.returncode}")
        url = f"http://127.0.0.1:{self.port}{path}"
        with urllib.request.urlopen(url, timeout=30) as response:
            return json.loads(response.read())

    def stats(self) -> dict[str, Any]:
        doc: dict[str, Any] = self._get("/stats")
        return doc

    def seen(self) -> list[tuple[int, int]]:
        return [(int(c), int(i)) for c, i in self._get("/seen")]

    def close(self) -> None:
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        CHILDREN.kill(self.proc)


# --------------------------------------------------------------------------- the server


def server_config(policy: str, sink_url: str) -> dict[str, Any]:
    return {
        "queue": {"max_events": QUEUE_EVENTS, "policy": policy},
        "forward": [
            {
                "name": "slow",
                "primaries": [{"url": sink_url}],
                "batch_events": BATCH_EVENTS,
                "max_in_flight": MAX_IN_FLIGHT,
                "buffer_events": BUFFER_EVENTS,
            }
        ],
    }


def start_server(config_path: Path) -> ServerProcess:
    from logcaster.testing import ServerProcess

    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGCASTER_")}
    args = ["--config", str(config_path), "--port", "0", "--query-port", "0"]
    server = ServerProcess([*args, "--log-level", "warning"], env=env)
    try:
        server.wait_ready(20.0)
    except RuntimeError as exc:
        raise BenchError(str(exc)) from exc
    return server


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


# --------------------------------------------------------------------------- report


@dataclass
class Summary:
    policy: str
    runs: list[PolicyRun]

    def median(self, key: str) -> float | None:
        values = [r.values[key] for r in self.runs if key in r.values]
        return statistics.median(values) if values else None

    def check(self, key: str) -> str:
        results = [r.checks[key] for r in self.runs if key in r.checks]
        if not results:
            return "-"
        ok = sum(results)
        word = "ok" if ok == len(results) else "FAIL"
        return word if len(results) == 1 else f"{word} {ok}/{len(results)}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def render_table(summaries: Sequence[Summary], args: argparse.Namespace, corpus: Corpus) -> str:
    capacity = BATCH_EVENTS * 1000.0 / args.delay_ms
    reasons = sorted(
        {k for s in summaries for r in s.runs for k in r.values if k.startswith("Dropped")}
        - {"Dropped"}
    )
    sums = summaries
    rows: list[tuple[str, ...]] = [("", *(s.policy for s in sums))]

    def row(label: str, key: str, fmt: Any = fmt_int) -> None:
        rows.append((label, *(fmt(s.median(key)) for s in summaries)))

    row("sender elapsed (s)", "sent_s", fmt_2)
    row("  read by the server by then", "read_when_sent")
    row("settled (s, from first byte)", "settled_s", fmt_2)
    row("received (Total)", "Total")
    row("delivered", "Delivered")
    row("forwarded", "Forwarded")
    row("received by the slow sink", "sink_events")
    row("  duplicates at the sink", "sink_duplicates")
    row("dropped", "Dropped")
    for reason in reasons:
        row(f"  {reason}", reason)
    row("sampled", "Sampled")
    rows.append(
        (
            "ERROR sent / at the sink",
            *(
                f"{fmt_int(s.median('errors_sent'))} / {fmt_int(s.median('sink_errors'))}"
                for s in sums
            ),
        )
    )
    row("first 10% of lines at the sink", "first_10pct", _pct)
    row("last 10% of lines at the sink", "last_10pct", _pct)
    row("peak QueueEvents", "QueuePeakEvents")
    row("peak ForwardBuffered", "ForwardBufferedPeak")
    row("high watermark crossings", "HighWatermark")
    row("RSS at start (MB)", "rss_start_mb", fmt_1)
    row("RSS max, sampled (MB)", "rss_max_mb", fmt_1)
    row("RSS peak, VmHWM (MB)", "rss_hwm_mb", fmt_1)
    row("forwarded rate (events/s)", "forward_rate")
    row(f"  / configured capacity {capacity:,.0f}/s", "rate_ratio", fmt_2)
    row("POSTs to the sink", "posts")
    row(f"  events per POST, mean (batch_events {BATCH_EVENTS})", "post_mean")
    row("  events per POST, max", "post_max")
    row("  rate / (mean POST / delay)", "rate_ratio_posts", fmt_2)
    row("SIGTERM to exit (s)", "stop_s", fmt_2)
    for label, key in (
        ("check: Total = Deliv+Drop+Samp+Queue", "accounting"),
        ("check: Forwarded = sink received", "forwarded"),
        ("check: every ERROR kept (sample)", "errors_kept"),
        ("check: settled before the timeout", "settled"),
    ):
        rows.append((label, *(s.check(key) for s in summaries)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(r)
        ).rstrip()
        for r in rows
    ]
    runs = summaries[0].runs if summaries else []
    head = (
        f"overload: {corpus.lines:,} lines ({corpus.errors:,} ERROR) over {CONNECTIONS} "
        f"connections; slow sink {args.delay_ms:g} ms per POST of {BATCH_EVENTS} events = "
        f"{capacity:,.0f} events/s (max_in_flight {MAX_IN_FLIGHT}); queue.max_events "
        f"{QUEUE_EVENTS:,}, buffer_events {BUFFER_EVENTS:,}, no spool; "
        f"{'median of ' + str(len(runs)) + ' runs' if len(runs) > 1 else '1 run'}"
    )
    return "\n".join([head, "", *lines])


# --------------------------------------------------------------------------- command line


def _delay(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 10_000:
        raise argparse.ArgumentTypeError("must be in (0, 10000] ms")
    return value


def _policies(text: str) -> list[str]:
    names = [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in names if p not in POLICIES]
    if not names or bad:
        raise argparse.ArgumentTypeError(f"unknown policy {bad[0]!r}" if bad else "no policy given")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench/overload",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Overload a LogCaster server through a slow forward sink, once per queue policy:\n"
            "drops by reason, sampling, the queue's peak, the memory ceiling and the\n"
            "accounting (Total = Delivered + Dropped + Sampled + QueueEvents)."
        ),
        epilog=(
            "Per policy and run: a fresh slow HTTP NDJSON receiver (bench/_slow_sink.py:\n"
            "sleeps --delay-ms per POST, counts JSON lines) and a fresh `logcaster serve`\n"
            f"forwarding to it (batch_events {BATCH_EVENTS}, max_in_flight {MAX_IN_FLIGHT}, "
            f"buffer_events {BUFFER_EVENTS:,},\n"
            f"no spool), queue.max_events {QUEUE_EVENTS:,}. The sender floods the ingest port "
            f"over {CONNECTIONS}\nconnections (1 line in {ERROR_EVERY} ERROR); RSS and STATS "
            "are sampled every 50 ms;\nthe bench then waits until the server holds nothing.\n"
            "Results: a table on stdout (medians with --runs > 1), one JSON document in\n"
            "bench/out/overload-<timestamp>.json. Exit status 1 when a check failed.\n\n"
            "examples:\n"
            "  bench/overload                                   300k lines, every policy\n"
            "  bench/overload --runs 3                          medians of 3 runs\n"
            "  bench/overload --policies block,sample --lines 100k --delay-ms 20"
        ),
    )
    parser.add_argument(
        "--lines",
        type=parse_count,
        default=300_000,
        metavar="N",
        help="lines to send per run, e.g. 300000, 300k, 1M (default 300k)",
    )
    parser.add_argument(
        "--delay-ms",
        type=_delay,
        default=50.0,
        metavar="MS",
        help=f"the sink's sleep per POST of {BATCH_EVENTS} events (default 50: 10,000 events/s)",
    )
    parser.add_argument(
        "--policies",
        type=_policies,
        default=list(POLICIES),
        metavar="LIST",
        help=f'comma-separated queue policies (default "{",".join(POLICIES)}")',
    )
    parser.add_argument(
        "--runs", type=positive_int, default=1, help="runs per policy; medians (default 1)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        _ensure_venv()
        corpus = make_corpus(args.lines)
        summaries = [Summary(p, []) for p in args.policies]
        with tempfile.TemporaryDirectory(prefix="overload-") as tmp:
            for i in range(args.runs):
                for summary in summaries:
                    r = run_policy(summary.policy, args, corpus, Path(tmp))
                    summary.runs.append(r)
                    v = r.values
                    log(
                        f"[{summary.policy}, run {i + 1}/{args.runs}] sent in "
                        f"{v['sent_s']:.2f} s, Total {v['Total']:,.0f}, forwarded "
                        f"{v['Forwarded']:,.0f}, dropped {v['Dropped']:,.0f}, sampled "
                        f"{v['Sampled']:,.0f}, RSS max {v['rss_max_mb']:.1f} MB, "
                        f"checks {'ok' if all(r.checks.values()) else 'FAILED'}"
                    )
                    for w in r.warnings:
                        log(f"  warning: {w}")
    except BenchError as exc:
        log(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        CHILDREN.kill_all()
    print(render_table(summaries, args, corpus), flush=True)
    doc = {
        "bench": "overload",
        "time": dt.datetime.now().isoformat(timespec="seconds"),
        "lines": corpus.lines,
        "errors": corpus.errors,
        "delay_ms": args.delay_ms,
        "queue_events": QUEUE_EVENTS,
        "batch_events": BATCH_EVENTS,
        "buffer_events": BUFFER_EVENTS,
        "max_in_flight": MAX_IN_FLIGHT,
        "cpus": os.cpu_count(),
        "policies": {
            s.policy: [
                {"values": r.values, "checks": r.checks, "warnings": r.warnings} for r in s.runs
            ]
            for s in summaries
        },
    }
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    out_path = OUT_DIR / f"overload-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    out_path.write_text(json.dumps(doc, indent=2) + "\n")
    log(f"results written to {out_path}")
    failed = any(not ok for s in summaries for r in s.runs for ok in r.checks.values())
    return 1 if failed else 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        raise SystemExit(main())
