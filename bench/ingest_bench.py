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

The parts: bench/_ingest_run.py (one LogCaster run), bench/_socat.py and
bench/_rsyslog.py (the references), bench/_ingest_report.py (medians, table,
JSON), bench/_corpus.py (the corpus). This module holds the command line and
the loop over connection counts and runs.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    exit_on_sigterm,
    log,
    parse_count,
    positive_int,
)
from _file_run import bench_file
from _ingest_report import Summary, render_table, result_doc
from _ingest_run import run_logcaster
from _tls import make_tls

# A run with redaction on: its built-ins by default (docs/redaction.md).
REDACT_ENV = {"LOGCASTER_REDACT__ENABLED": "true"}


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
            "shows the final Total (the corpus' event count, every connection closed and\n"
            "every event delivered; STATS polled every 10 ms once the senders have closed;\n"
            "a server that makes fewer events is timed to its last change of Total), until\n"
            "every socat has written all its bytes, or\n"
            "until rsyslog's output file holds every byte sent (size polled every 10 ms;\n"
            "afterwards its lines are checked against those sent).\n"
            "The corpus is generated into bench/out/corpus-<N>.log (corpus-traces-<N>.log\n"
            "with --corpus traces; seeded, deterministic),\n"
            "deleted at the end unless --keep-corpus, and reused whenever it is there.\n"
            "Results: a table on stdout, then one JSON line, also written to\n"
            "bench/out/ingest-<timestamp>.json.\n\n"
            "examples:\n"
            "  bench/ingest                                        1M lines, 1 and 8 connections\n"
            "  bench/ingest --lines 5M --keep-corpus               the peak-RSS target\n"
            "  bench/ingest --lines 100k --runs 1 --connections 1  a quick check\n"
            "  bench/ingest --corpus traces                        stack traces of every language\n"
            "  bench/ingest --redact --corpus secrets              redaction's cost, many secrets"
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
        "--corpus",
        choices=sorted(_corpus.NAMES),
        default="default",
        help="default: the seed-style corpus above; traces: single lines and raw stack "
        "traces of Java, Python, Go, Node, Ruby, PHP, C# and Dart (~20%% of lines), plus "
        "lines that only look like part of a trace (bench/_corpus_traces.py); frequent: "
        "single-line web and app logs, nginx access lines, Go slog text and zap JSON "
        "(bench/_corpus_frequent.py). The table shows the server's event count next to "
        "the corpus' expected one",
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
        "--source",
        choices=["tcp", "file"],
        default="tcp",
        help="file: LogCaster's file-tail source reads the corpus from a file, beside "
        "rsyslog's imfile reading the same file (bench/_file_run.py); --connections, "
        "--ack, --tls, --encrypt, --redact and socat do not apply",
    )
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
        "--tls",
        action="store_true",
        help="after each run, the same run with the ingest listener serving TLS and TLS "
        "senders (a throwaway certificate); the table adds TLS lines/s and TLS/plain",
    )
    parser.add_argument(
        "--encrypt",
        metavar="FIELDS",
        help='encrypt these fields before storage, e.g. "user_id,email" (encrypt.fields, '
        "with a keys file made in bench/out for the run)",
    )
    parser.add_argument(
        "--redact",
        action="store_true",
        help="also run each configuration with redaction on (redact.enabled, its default "
        "built-ins), alternating with the plain runs; prints both and redacted/plain. "
        "--corpus secrets puts a secret in ~10%% of the lines",
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
def corpus_for(lines: int, seed: int, keep: bool, corpus: str) -> Iterator[_corpus.CorpusInfo]:
    path = _corpus.corpus_path(OUT_DIR, lines, corpus)
    info = _corpus.load_cached(path, lines, seed, corpus)
    generated = info is None
    if info is None:
        log(f"generating corpus: {lines:,} lines -> {path}")
        info = _corpus.generate(path, lines, seed, corpus)
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
    exit_on_sigterm()
    server_cmd = [args.server]
    if not Path(args.server).exists() and shutil.which(args.server) is None:
        log(f"error: no logcaster command at {args.server} (run `make install`)")
        return 2
    if args.source == "file":
        return _file_main(args, server_cmd)
    socat = None if args.no_reference else _socat.ensure_socat()
    if not args.no_reference and socat is None:
        log("warning: socat is not available: running without the raw reference")
    rsyslogd = None if args.no_rsyslog else _rsyslog.ensure_rsyslogd()
    if not args.no_rsyslog and rsyslogd is None:
        log("warning: rsyslogd is not available: running without the rsyslog reference")
    try:
        with corpus_for(args.lines, args.seed, args.keep_corpus, args.corpus) as corpus:
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
    doc["tls"] = args.tls
    doc["encrypt"] = args.encrypt
    doc["redact"] = args.redact
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_path = OUT_DIR / f"ingest-{stamp}.json"
    out_path.write_text(json.dumps(doc, indent=2) + "\n")
    log(f"results written to {out_path}")
    print(json.dumps(doc, separators=(",", ":")), flush=True)
    return 0


def _file_main(args: argparse.Namespace, server_cmd: list[str]) -> int:
    """`--source file`: the file-tail source against rsyslog's imfile (bench/_file_run.py)."""
    rsyslogd = None if args.no_rsyslog else _rsyslog.ensure_rsyslogd()
    try:
        with corpus_for(args.lines, args.seed, args.keep_corpus, args.corpus) as corpus:
            doc = bench_file(args, corpus, server_cmd, rsyslogd)
    except BenchError as exc:
        log(f"error: {exc}")
        return 1
    finally:
        CHILDREN.kill_all()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    (OUT_DIR / f"ingest-file-{stamp}.json").write_text(json.dumps(doc, indent=2) + "\n")
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
    args.env_extra = _encrypt_env(args.encrypt, server_cmd)
    try:
        return _bench_all(args, corpus, server_cmd, socat, rsyslogd, data)
    finally:
        if args.env_extra:  # the run's keys file: nothing it sealed is kept
            Path(args.env_extra["LOGCASTER_ENCRYPT__KEYS_FILE"]).unlink(missing_ok=True)


def _bench_all(
    args: argparse.Namespace,
    corpus: _corpus.CorpusInfo,
    server_cmd: Sequence[str],
    socat: str | None,
    rsyslogd: str | None,
    data: memoryview,
) -> list[Summary]:
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
    tls = make_tls(OUT_DIR / "tls") if args.tls else None

    def run(**extra: Any) -> RunResult:
        """One LogCaster run of this configuration; `extra`: tls=, env_extra=."""
        store = not args.no_store
        return run_logcaster(
            server_cmd, corpus, parts, timeout_s, args.persist, args.ack, store, **extra
        )

    for i in range(args.runs):
        r = run(env_extra=args.env_extra)
        summary.runs.append(r)
        tls_msg = ""
        if tls is not None:
            t = run(tls=tls, env_extra=args.env_extra)
            summary.tls_runs.append(t)
            tls_msg = f"; over TLS: {t.lines_per_s:,.0f} lines/s ({t.seconds:.3f} s)"
        if args.redact:
            red = run(env_extra=REDACT_ENV)
            summary.redact_runs.append(red)
            log(
                f"[{conns} conn, run {i + 1}/{args.runs}] logcaster, redaction on: "
                f"{red.lines_per_s:,.0f} lines/s ({red.seconds:.3f} s), "
                f"Redacted {red.stats.get('Redacted', '-')}, Total {red.total:,}"
            )
        rss = "-" if r.peak_rss_bytes is None else f"{r.peak_rss_bytes / MB:,.1f} MB"
        msg = (
            f"[{conns} conn, run {i + 1}/{args.runs}] logcaster: {r.lines_per_s:,.0f} lines/s "
            f"{r.mb_per_s:,.1f} MB/s ({r.seconds:.3f} s, sent in {r.sent_s:.3f} s), "
            f"peak RSS {rss}, Total {r.total:,}{tls_msg}"
        )
        if r.total != corpus.events:
            msg += f" (the corpus holds {corpus.events:,} events)"
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


def _encrypt_env(fields: str | None, server_cmd: Sequence[str]) -> dict[str, str]:
    """The LOGCASTER_ENCRYPT__* settings for `--encrypt`, with a fresh keys file."""
    if not fields:
        return {}
    names = [name.strip() for name in fields.split(",") if name.strip()]
    keys_file = OUT_DIR / f"field-keys-{os.getpid()}.json"
    keys_file.unlink(missing_ok=True)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    made = subprocess.run(
        [*server_cmd, "keys", "create", "--file", str(keys_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode != 0:
        raise BenchError(f"cannot make a keys file: {made.stderr.strip()}")
    return {
        "LOGCASTER_ENCRYPT__FIELDS": json.dumps(names),
        "LOGCASTER_ENCRYPT__KEYS_FILE": str(keys_file),
    }


if __name__ == "__main__":
    raise SystemExit(main())
