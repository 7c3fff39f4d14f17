"""LogCaster ingest benchmark (run it as `bench/ingest`; see `bench/ingest --help`).

Sends one seed-style corpus to a fresh `logcaster serve` per run, over 1 and
over 8 TCP connections, and the same bytes, in the same run, to two references:
a raw socket-to-file receiver (socat, bench/_socat.py) and a standalone rsyslogd
writing each message's raw text to a file (imtcp -> omfile, bench/_rsyslog.py).
Reports medians over the runs: lines/s, MB/s, peak RSS and the ratios ours/raw
and ours/rsyslog, next to the targets.

Timing, per run: the clock starts just before the first byte is sent (all
connections are open by then) and stops when the reply that shows the final
STATS Total arrives (LogCaster), when every socat has written all its bytes
to its file and exited (raw), or when rsyslog's output file holds every byte
sent (rsyslog). Nothing is subtracted. STATS and the file size are polled
every 10 ms; the corpus is in memory and sent with `sendall` in 1 MiB chunks,
one thread per connection.

With `--ack` each connection is a `logcaster.client.LogCasterClient` with
acknowledged delivery (whole lines in ~1 MiB sends), and the clock stops when
every client holds the ack of its last line: the rate at which a client gets
confirmations, under the chosen fsync setting.
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
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType

import _corpus
import _rsyslog
import _socat
from _common import (
    CHILDREN,
    MB,
    OUT_DIR,
    REPO,
    BenchError,
    RunResult,
    SendResult,
    fmt_1,
    fmt_2,
    fmt_int,
    free_ports,
    log,
    parse_count,
    positive_int,
    reference_dir,
    run_senders,
    send_parts,
    tail,
    vm_hwm,
    wait_listening,
)

TARGET_LINES_PER_S = 400_000  # on one connection
TARGET_RSS_BYTES = 200_000_000  # peak RSS ...
TARGET_RSS_LINES = 5_000_000  # ... when ingesting this many lines

STATS_POLL_S = 0.010  # STATS poll interval once every sender has closed
STABLE_S = 2.0  # Total unchanged this long after the senders closed: it is final
STOP_TIMEOUT_S = 60.0
SEND_CHUNK_BYTES = 1 << 20  # per send with --ack (cut at the next newline)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


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
    """Events every sink has taken (Delivered; older servers: Total, events read)."""
    total = stat_int(stats, "Delivered")
    if total is None:
        total = stat_int(stats, "Total")
    if total is None:
        raise BenchError(f"STATS Total is not a number: {stats}")
    return total


def _wait_total(
    query_port: int,
    t0: float,
    expected: int,
    timeout_s: float,
    check: Callable[[], None],
    warnings: list[str],
) -> tuple[dict[str, str], float]:
    """Poll STATS until Total reaches `expected`: (the last STATS, when it did)."""
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


# --------------------------------------------------------------------------- runs


def run_logcaster(
    server_cmd: Sequence[str],
    corpus: _corpus.CorpusInfo,
    parts: Sequence[memoryview],
    timeout_s: float,
    persist: str | None = None,
    ack: bool = False,
    store: bool = True,
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
        wait_listening(ingest_port, proc, "logcaster")
        wait_listening(query_port, proc, "logcaster (query port)")

        def check() -> None:
            if proc.poll() is not None:
                raise BenchError(f"logcaster exited with status {proc.returncode} during the run")

        expected = corpus.events
        warnings: list[str] = []
        if ack:
            sent = send_parts_acked(ingest_port, parts, check, timeout_s)
            end = sent.t0 + sent.sent_s
            stats = parse_stats(query(query_port, "STATS"))
        else:
            sent = send_parts(ingest_port, parts, check)
            stats, end = _wait_total(query_port, sent.t0, expected, timeout_s, check, warnings)
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
        if persist is not None:
            shutil.rmtree(OUT_DIR / f"persist-{os.getpid()}", ignore_errors=True)
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
        last = tail(log_path)
        if last:
            log(f"logcaster's log ({log_path}), last lines:\n{last}")
        raise
    finally:
        CHILDREN.kill(proc)
        # Keep the server's log only when it says something and the run went wrong.
        if proc.returncode == 0 or not tail(log_path):
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


# --------------------------------------------------------------------------- report


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _median_rss(runs: Sequence[RunResult]) -> int | None:
    values = [r.peak_rss_bytes for r in runs if r.peak_rss_bytes is not None]
    return int(statistics.median(values)) if values else None


@dataclass
class Summary:
    connections: int
    runs: list[RunResult]
    raw_runs: list[RunResult]
    rsyslog_runs: list[RunResult]

    @property
    def lines_per_s(self) -> float:
        return statistics.median(r.lines_per_s for r in self.runs)

    @property
    def mb_per_s(self) -> float:
        return statistics.median(r.mb_per_s for r in self.runs)

    @property
    def peak_rss_bytes(self) -> int | None:
        return _median_rss(self.runs)

    @property
    def raw_lines_per_s(self) -> float | None:
        return _median([r.lines_per_s for r in self.raw_runs])

    @property
    def raw_mb_per_s(self) -> float | None:
        return _median([r.mb_per_s for r in self.raw_runs])

    @property
    def ratio(self) -> float | None:
        raw = self.raw_lines_per_s
        return self.lines_per_s / raw if raw else None

    @property
    def rsyslog_lines_per_s(self) -> float | None:
        return _median([r.lines_per_s for r in self.rsyslog_runs])

    @property
    def rsyslog_mb_per_s(self) -> float | None:
        return _median([r.mb_per_s for r in self.rsyslog_runs])

    @property
    def rsyslog_peak_rss_bytes(self) -> int | None:
        return _median_rss(self.rsyslog_runs)

    @property
    def rsyslog_ratio(self) -> float | None:
        ref = self.rsyslog_lines_per_s
        return self.lines_per_s / ref if ref else None


def _fmt_rss(x: int | None) -> str:
    return "-" if x is None else f"{x / MB:,.1f} MB"


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
        "rsyslog lines/s",
        "rsyslog MB/s",
        "rsyslog RSS",
        "ours/rsyslog",
    )
    rows = [header]
    for s in summaries:
        rss = s.peak_rss_bytes
        rows.append(
            (
                str(s.connections),
                fmt_int(s.lines_per_s),
                throughput_verdict(s),
                fmt_1(s.mb_per_s),
                _fmt_rss(rss),
                rss_verdict(s, corpus.lines),
                fmt_int(s.raw_lines_per_s),
                fmt_1(s.raw_mb_per_s),
                fmt_2(s.ratio),
                fmt_int(s.rsyslog_lines_per_s),
                fmt_1(s.rsyslog_mb_per_s),
                _fmt_rss(s.rsyslog_peak_rss_bytes),
                fmt_2(s.rsyslog_ratio),
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
    if any(s.rsyslog_runs for s in summaries):
        lines.append(
            f"rsyslog = a standalone rsyslogd, imtcp -> omfile (the raw message per line, "
            f"into {reference_dir(corpus.nbytes)}), timed until its file holds every line "
            f"sent; rsyslog RSS = its peak RSS (VmHWM)."
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
    rsyslog_reference: str | None,
) -> dict[str, object]:
    def run_doc(r: RunResult) -> dict[str, object]:
        return {k: v for k, v in asdict(r).items() if v is not None and v != {}}

    def rounded(x: float | None, digits: int | None = None) -> float | int | None:
        return None if x is None else round(x, digits)

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
                "raw_lines_per_s": rounded(s.raw_lines_per_s),
                "raw_mb_per_s": rounded(s.raw_mb_per_s, 2),
                "ratio": rounded(s.ratio, 3),
                "rsyslog_lines_per_s": rounded(s.rsyslog_lines_per_s),
                "rsyslog_mb_per_s": rounded(s.rsyslog_mb_per_s, 2),
                "rsyslog_peak_rss_bytes": s.rsyslog_peak_rss_bytes,
                "rsyslog_peak_rss_mb": rounded(
                    None if s.rsyslog_peak_rss_bytes is None else s.rsyslog_peak_rss_bytes / MB, 1
                ),
                "rsyslog_ratio": rounded(s.rsyslog_ratio, 3),
                "rsyslog_lines_written": [r.total for r in s.rsyslog_runs],
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
                "rsyslog_runs": [run_doc(r) for r in s.rsyslog_runs],
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
        "rsyslog_reference": rsyslog_reference,
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


def _connections(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not values or any(v < 1 or v > 256 for v in values):
        raise argparse.ArgumentTypeError("connection counts must be 1..256")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench/ingest",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "LogCaster ingest benchmark: send a seed-style corpus (mixed formats, ~10% of\n"
            "lines in 15-30 line stack-trace blocks) to a fresh `logcaster serve` per run,\n"
            "over each connection count, and the same bytes to two references in the same\n"
            "run: a raw socket-to-file receiver (one socat per connection, each writing a\n"
            "file) and a standalone rsyslogd of our own (imtcp on a loopback port -> omfile,\n"
            "the raw message per line; its own config, work directory and pid file).\n"
            "Prints medians of lines/s, MB/s (10^6 bytes), peak RSS (VmHWM), ours/raw and\n"
            "ours/rsyslog, next to the targets: >=400,000 lines/s on one connection,\n"
            "peak RSS <=200 MB on 5M lines. socat and rsyslog are installed with apt-get\n"
            "when missing."
        ),
        epilog=(
            "Timing: from just before the first byte is sent until the STATS reply that\n"
            "shows the final Total (the corpus' event count; STATS polled every 10 ms once\n"
            "the senders have closed), until every socat has written all its bytes, or\n"
            "until rsyslog's output file holds every byte sent (size polled every 10 ms;\n"
            "afterwards its lines are checked against those sent).\n"
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
        type=parse_count,
        default=1_000_000,
        metavar="N",
        help="corpus size in lines, e.g. 1000000, 1M, 5M (default 1M)",
    )
    parser.add_argument(
        "--runs", type=positive_int, default=3, help="runs per configuration; medians (default 3)"
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
    parser.add_argument("--no-rsyslog", action="store_true", help="skip the rsyslog reference")
    parser.add_argument(
        "--persist",
        choices=["always", "interval", "never"],
        help="run LogCaster with its file sink (-P in bench/out) and this fsync setting",
    )
    parser.add_argument(
        "--no-store",
        action="store_true",
        help="with --persist: turn the embedded store (and its indexer process) off",
    )
    parser.add_argument(
        "--ack",
        action="store_true",
        help="send through logcaster.client with acknowledged delivery; time until every "
        "line is acked",
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
    socat = None if args.no_reference else _socat.ensure_socat()
    if not args.no_reference and socat is None:
        log("warning: socat is not available: running without the raw reference")
    rsyslogd = None if args.no_rsyslog else _rsyslog.ensure_rsyslogd()
    if not args.no_rsyslog and rsyslogd is None:
        log("warning: rsyslogd is not available: running without the rsyslog reference")
    try:
        with _corpus_for(args.lines, args.seed, args.keep_corpus) as corpus:
            summaries = _bench(args, corpus, server_cmd, socat, rsyslogd)
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
        for who, runs in (("logcaster", s.runs), ("rsyslog", s.rsyslog_runs)):
            for r in runs:
                for w in r.warnings:
                    log(f"warning ({who}, {s.connections} conn): {w}")
    reference = None if socat is None else _socat.reference_description(socat, corpus.nbytes)
    rsyslog_ref = None if rsyslogd is None else _rsyslog.reference_description(rsyslogd)
    doc = result_doc(summaries, corpus, args.runs, server_cmd, reference, rsyslog_ref)
    doc["persist"] = args.persist  # the file sink's fsync setting, or None (memory only)
    doc["ack"] = args.ack
    doc["store"] = args.persist is not None and not args.no_store
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_path = OUT_DIR / f"ingest-{stamp}.json"
    out_path.write_text(json.dumps(doc, indent=2) + "\n")
    log(f"results written to {out_path}")
    print(json.dumps(doc, separators=(",", ":")), flush=True)
    return 0


@dataclass
class References:
    raw: _socat.RawReference | None
    rsyslog: _rsyslog.RsyslogReference | None

    def close(self) -> None:
        if self.raw is not None:
            self.raw.close()
        if self.rsyslog is not None:
            self.rsyslog.close()


def _bench(
    args: argparse.Namespace,
    corpus: _corpus.CorpusInfo,
    server_cmd: Sequence[str],
    socat: str | None,
    rsyslogd: str | None,
) -> list[Summary]:
    data = memoryview(corpus.path.read_bytes())
    if len(data) != corpus.nbytes:
        raise BenchError(f"{corpus.path} changed size while in use")
    timeout_s = max(120.0, corpus.lines / 20_000)
    summaries: list[Summary] = []
    for conns in args.connections:
        parts = _corpus.split(data, corpus.split_points, conns)
        summary = Summary(connections=conns, runs=[], raw_runs=[], rsyslog_runs=[])
        refs = References(
            raw=None if socat is None else _socat.RawReference(socat, parts),
            rsyslog=None if rsyslogd is None else _rsyslog.RsyslogReference(rsyslogd, parts),
        )
        try:
            _bench_config(args, corpus, server_cmd, parts, refs, summary, timeout_s)
        finally:
            refs.close()
        summaries.append(summary)
    return summaries


def _bench_config(
    args: argparse.Namespace,
    corpus: _corpus.CorpusInfo,
    server_cmd: Sequence[str],
    parts: Sequence[memoryview],
    refs: References,
    summary: Summary,
    timeout_s: float,
) -> None:
    conns = len(parts)
    for i in range(args.runs):
        r = run_logcaster(
            server_cmd, corpus, parts, timeout_s, args.persist, args.ack, not args.no_store
        )
        summary.runs.append(r)
        rss = "-" if r.peak_rss_bytes is None else f"{r.peak_rss_bytes / MB:,.1f} MB"
        msg = (
            f"[{conns} conn, run {i + 1}/{args.runs}] logcaster: {r.lines_per_s:,.0f} lines/s "
            f"{r.mb_per_s:,.1f} MB/s ({r.seconds:.3f} s, sent in {r.sent_s:.3f} s), "
            f"peak RSS {rss}, Total {r.total:,}"
        )
        if refs.raw is not None:
            raw = refs.raw.run(corpus)
            summary.raw_runs.append(raw)
            msg += f"; socat: {raw.lines_per_s:,.0f} lines/s ({raw.seconds:.3f} s)"
        if refs.rsyslog is not None:
            rs = refs.rsyslog.run(corpus, timeout_s)
            summary.rsyslog_runs.append(rs)
            rs_rss = "-" if rs.peak_rss_bytes is None else f"{rs.peak_rss_bytes / MB:,.1f} MB"
            msg += (
                f"; rsyslog: {rs.lines_per_s:,.0f} lines/s ({rs.seconds:.3f} s, "
                f"sent in {rs.sent_s:.3f} s), peak RSS {rs_rss}, {rs.total:,} lines written"
            )
        log(msg)


if __name__ == "__main__":
    raise SystemExit(main())
