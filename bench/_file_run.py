"""`bench/ingest --source file`: LogCaster's file-tail source against rsyslog's imfile.

Both read the same file, the benchmark corpus (bench/_corpus.py), in the same
run, each from a directory of its own that is empty when the reader starts:

- LogCaster: a fresh `logcaster serve` whose `sources.files` glob names that
  directory (poll_interval 0.1 s, so discovery costs at most 0.1 s; multiline
  idle_timeout 0.1 s, so the corpus' last event is not held 1 s); memory only,
  or its file sink with `--persist`. Stored = STATS Total is the corpus' event
  count and every event is delivered (in memory, or written under the fsync
  setting with `--persist`).
- rsyslog: a standalone rsyslogd (own config, work directory, pid file; no
  other input) with imfile (inotify mode) watching its directory, omfile
  writing each line's raw text to a file (bench/_rsyslog.py's OMFILE_PARAMS).
  Stored = the output file holds every byte rsyslog writes for the corpus.

Timing, per run: the reader is ready and idle; the clock starts when the
corpus is hard-linked into its directory (instant: no bytes copied, so the
reader reads from the page cache as a tail of a just-written log would) and
stops when stored, polled every 10 ms. lines/s counts the corpus' lines for
both (rsyslog makes one message per line, LogCaster groups stack traces).
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import _corpus
import _rsyslog
from _common import (
    CHILDREN,
    MB,
    OUT_DIR,
    BenchError,
    RunResult,
    aligned_table,
    log,
    reference_dir,
    vm_hwm,
)
from _ingest_run import finish_logcaster, settle, start_logcaster, stop_logcaster, wait_total
from _query_port import stat_int, total_of

POLL_S = 0.010

IMFILE_CONFIG = """\
# Written by LogCaster's bench/ingest --source file for one run; not a system configuration.
global(
  workDirectory="{workdir}"
  maxMessageSize="64k"
  processInternalMessages="on"
)
module(load="imfile" mode="inotify")
template(name="raw" type="string" string="%rawmsg%\\n")
ruleset(name="bench") {{
  action(type="omfile" file="{output}" template="raw" {omfile})
}}
input(type="imfile" file="{watch}/*.log" tag="bench" ruleset="bench")
*.* action(type="omfile" file="{internal}")
"""


def _link_into(corpus: Path, directory: Path) -> float:
    """Hard-link the corpus into the watched directory; the clock's start."""
    target = directory / "corpus.log"
    target.unlink(missing_ok=True)
    t0 = time.perf_counter()
    os.link(corpus, target)
    return t0


def _watch_dir(name: str) -> Path:
    """An empty directory beside the corpus (bench/out): a hard link needs one file system."""
    path = OUT_DIR / f"{name}-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def run_logcaster_file(
    server_cmd: Sequence[str], corpus: _corpus.CorpusInfo, timeout_s: float, persist: str | None
) -> RunResult:
    watch = _watch_dir("file-source")
    env = {
        "LOGCASTER_SOURCES__FILES__INPUTS": f'[{{paths: ["{watch}/*.log"], service: bench}}]',
        "LOGCASTER_SOURCES__FILES__POLL_INTERVAL": "0.1",
        "LOGCASTER_MULTILINE__IDLE_TIMEOUT": "0.1",
    }
    server = start_logcaster(server_cmd, persist, True, env)
    failed = True
    try:
        warnings: list[str] = []
        t0 = _link_into(corpus.path, watch)
        stats, end = wait_total(
            server.query_port, t0, corpus.events, timeout_s, server.check, warnings
        )
        stats = settle(server.query_port, stats, server.check)
        total = total_of(stats)
        if total != corpus.events:
            warnings.append(f"final Total={total:,}, expected {corpus.events:,} events")
        read = stat_int(stats, "FileReadBytes")
        if read != corpus.nbytes:
            warnings.append(f"read {read} bytes of {corpus.nbytes:,}")
        rss = vm_hwm(server.proc.pid)
        code = stop_logcaster(server, warnings)
        failed = False
        seconds = end - t0
        return RunResult(
            seconds=seconds,
            lines_per_s=corpus.lines / seconds,
            mb_per_s=corpus.nbytes / seconds / MB,
            sent_s=0.0,
            peak_rss_bytes=rss,
            total=total,
            stats=stats,
            exit_code=code,
            warnings=warnings,
        )
    finally:
        finish_logcaster(server, failed)
        shutil.rmtree(watch, ignore_errors=True)


class ImfileReference:
    """rsyslog's imfile reading the corpus: a fresh rsyslogd, work dir and output per run."""

    def __init__(self, rsyslogd: str, corpus: _corpus.CorpusInfo) -> None:
        self.rsyslogd = rsyslogd
        self.dir = Path(
            tempfile.mkdtemp(
                prefix=f"logcaster-bench-imfile-{os.getpid()}-",
                dir=reference_dir(corpus.nbytes),
            )
        )
        self.out_bytes = _rsyslog_bytes(corpus.path)

    def run(self, corpus: _corpus.CorpusInfo, timeout_s: float) -> RunResult:
        work = self.dir / "work"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        output, internal = self.dir / "out.log", self.dir / "internal.log"
        for path in (output, internal):
            path.unlink(missing_ok=True)
        watch = _watch_dir("imfile")
        conf = self.dir / "rsyslog.conf"
        conf.write_text(
            IMFILE_CONFIG.format(
                workdir=work,
                output=output,
                internal=internal,
                watch=watch,
                omfile=_rsyslog.OMFILE_PARAMS,
            )
        )
        cmd = [self.rsyslogd, "-n", "-f", str(conf), "-i", str(self.dir / "rsyslogd.pid")]
        with (self.dir / "stderr.log").open("wb") as err:
            proc = CHILDREN.spawn(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        try:
            _wait_started(proc, internal)

            def check() -> None:
                if proc.poll() is not None:
                    raise BenchError(f"rsyslogd exited with status {proc.returncode}")

            t0 = _link_into(corpus.path, watch)
            end, size = self._wait_written(output, t0, timeout_s, check)
            warnings: list[str] = []
            if size != self.out_bytes:
                warnings.append(f"rsyslog's output stopped at {size:,} of {self.out_bytes:,} bytes")
            rss = vm_hwm(proc.pid)
            proc.send_signal(signal.SIGTERM)
            code: int | None = proc.wait(30)
            lines = _count_lines(output)
            if lines != corpus.lines:
                warnings.append(f"rsyslog wrote {lines:,} lines of {corpus.lines:,}")
            seconds = end - t0
            return RunResult(
                seconds=seconds,
                lines_per_s=corpus.lines / seconds,
                mb_per_s=corpus.nbytes / seconds / MB,
                sent_s=0.0,
                peak_rss_bytes=rss,
                total=lines,
                exit_code=code,
                warnings=warnings,
            )
        finally:
            CHILDREN.kill(proc)
            shutil.rmtree(watch, ignore_errors=True)

    def _wait_written(
        self, output: Path, t0: float, timeout_s: float, check: Callable[[], None]
    ) -> tuple[float, int]:
        last, changed_at = -1, time.perf_counter()
        while True:
            try:
                size = os.stat(output).st_size
            except FileNotFoundError:
                size = 0
            now = time.perf_counter()
            if size != last:
                last, changed_at = size, now
            if size >= self.out_bytes:
                return now, size
            check()
            if now - changed_at > _rsyslog.STABLE_S:
                return changed_at, size
            if now - t0 > timeout_s:
                raise BenchError(f"timeout: rsyslog wrote {size:,} of {self.out_bytes:,} bytes")
            time.sleep(POLL_S)

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _wait_started(proc: subprocess.Popen[bytes], internal: Path) -> None:
    """rsyslogd logs its start (`[origin software="rsyslogd" ...] start`) once its
    inputs are set up: after that, a file appearing is seen."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"rsyslogd exited with status {proc.returncode} at start")
        if internal.exists() and b"] start" in internal.read_bytes():
            return
        time.sleep(0.02)
    raise BenchError("rsyslogd did not log its start within 20 s")


def _rsyslog_bytes(path: Path) -> int:
    """What rsyslog writes for the file (`as_rsyslog_writes`), a chunk of whole lines
    at a time: a 1 GB corpus is never in memory at once."""
    total = 0
    rest = b""
    with path.open("rb") as f:
        while chunk := f.read(1 << 26):
            data = rest + chunk
            cut = data.rfind(b"\n") + 1
            total += len(_rsyslog.as_rsyslog_writes(data[:cut]))
            rest = data[cut:]
    return total + (len(_rsyslog.as_rsyslog_writes(rest)) if rest else 0)


def _count_lines(path: Path) -> int:
    count = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 24):
            count += chunk.count(b"\n")
    return count


def bench_file(
    args: Any, corpus: _corpus.CorpusInfo, server_cmd: Sequence[str], rsyslogd: str | None
) -> dict[str, Any]:
    """The runs (alternating LogCaster and imfile), the table on stderr, the JSON document."""
    timeout_s = max(120.0, corpus.lines / 20_000)
    ours: list[RunResult] = []
    theirs: list[RunResult] = []
    ref = None if rsyslogd is None else ImfileReference(rsyslogd, corpus)
    try:
        for i in range(args.runs):
            r = run_logcaster_file(server_cmd, corpus, timeout_s, args.persist)
            ours.append(r)
            msg = f"[file, run {i + 1}/{args.runs}] logcaster: {r.lines_per_s:,.0f} lines/s "
            msg += f"{r.mb_per_s:,.1f} MB/s ({r.seconds:.3f} s), Total {r.total:,}"
            if ref is not None:
                rs = ref.run(corpus, timeout_s)
                theirs.append(rs)
                msg += f"; rsyslog imfile: {rs.lines_per_s:,.0f} lines/s ({rs.seconds:.3f} s)"
            log(msg)
    finally:
        if ref is not None:
            ref.close()
    for who, runs in (("logcaster", ours), ("imfile", theirs)):
        for run in runs:
            for w in run.warnings:
                log(f"warning ({who}): {w}")
    med = statistics.median(r.lines_per_s for r in ours)
    ref_med = statistics.median(r.lines_per_s for r in theirs) if theirs else None
    ratio = None if ref_med is None else med / ref_med
    rows = [
        ("reader", "lines/s", "MB/s", "seconds", "peak RSS MB"),
        _row("logcaster file source", ours),
    ]
    if theirs:
        rows.append(_row("rsyslog imfile", theirs))
    sink = "memory" if args.persist is None else f"file sink, fsync {args.persist}"
    head = (
        f"File source: {corpus.lines:,} lines, {corpus.nbytes / MB:,.1f} MB, medians of "
        f"{args.runs} run(s); LogCaster stores to {sink}, rsyslog to a file"
    )
    lines = [head, *aligned_table(rows)]
    lines.append(f"ours/imfile: {ratio:.2f}" if ratio is not None else "ours/imfile: -")
    print("\n".join(lines), flush=True)
    return {
        "bench": "ingest-file",
        "lines": corpus.lines,
        "bytes": corpus.nbytes,
        "events": corpus.events,
        "runs": args.runs,
        "persist": args.persist,
        "logcaster_lines_per_s": [r.lines_per_s for r in ours],
        "imfile_lines_per_s": [r.lines_per_s for r in theirs],
        "median_lines_per_s": med,
        "median_imfile_lines_per_s": ref_med,
        "ratio_ours_over_imfile": ratio,
    }


def _row(name: str, runs: list[RunResult]) -> tuple[str, ...]:
    rss = [r.peak_rss_bytes for r in runs if r.peak_rss_bytes is not None]
    return (
        name,
        f"{statistics.median(r.lines_per_s for r in runs):,.0f}",
        f"{statistics.median(r.mb_per_s for r in runs):,.1f}",
        f"{statistics.median(r.seconds for r in runs):.3f}",
        f"{statistics.median(rss) / MB:,.1f}" if rss else "-",
    )
