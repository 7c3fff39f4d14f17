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

The parts: bench/_overload_scenario.py (settings, corpus, slow receiver,
server), bench/_overload_run.py (one measured run and its checks),
bench/_overload_report.py (the table). This module holds the command line,
the loop over runs and policies, and the JSON document.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from _common import (
    CHILDREN,
    OUT_DIR,
    REPO,
    BenchError,
    exit_on_sigterm,
    log,
    parse_count,
    positive_int,
)
from _overload_report import Summary, render_table
from _overload_run import run_policy
from _overload_scenario import (
    BATCH_EVENTS,
    BUFFER_EVENTS,
    CONNECTIONS,
    ERROR_EVERY,
    MAX_IN_FLIGHT,
    POLICIES,
    QUEUE_EVENTS,
    make_corpus,
)


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
    exit_on_sigterm()
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
