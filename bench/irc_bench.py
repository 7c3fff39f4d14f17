"""LogCaster IRC benchmark (run it as `bench/irc`; see `bench/irc --help`).

The cost of the IRC server (issue: "at 10,000 events/s of ingest into
#logs-all, with 50 clients joined, ingest stays within 10% of its rate with
IRC off, and memory stays bounded"), measured in the same run against IRC off.
Each run index does every case against a fresh server each, so drift hits them
alike:
- max rate: the corpus over TCP at full speed (bench/ingest's machinery and
  timing), IRC off, IRC on with no client (the log channels' streams alone),
  then IRC on with C raw-socket clients in #logs-all reading everything they
  are sent. Reports the median events/s of each, the ratio of the last to IRC
  off against the target (at most 10% slower: >= 0.90), the server's CPU
  seconds, the lines the clients read and the server's IrcLinesSent and
  IrcSkipped;
- paced: R events/s for S seconds over one connection, IRC off, IRC on with
  the C clients reading, and IRC on with K of the C clients stalled (joined,
  then never reading). Reports whether the server kept up (its events/s over
  the sending, what it had delivered when the last byte went, the lag from
  then to every event delivered, its queue's peak), its CPU share, and its
  memory (VmRSS before, the most sampled, VmHWM), the lines each reading
  client read, and what the server did about the stalled ones (IrcSkipped for
  a full client queue, the bytes left unread in their sockets, irc_disconnects
  from GET /metrics).

The parts: bench/_irc_clients.py (the IRC clients), bench/_irc_paced.py (the
paced sender, the memory sampler), bench/_irc_run.py (one run),
bench/_irc_report.py (the tables, the JSON); the corpus and the ingest
machinery are bench/ingest's (bench/_corpus.py, bench/_ingest_run.py).
This module holds the command line and the loops.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import _corpus
import _irc_report
from _common import (
    CHILDREN,
    OUT_DIR,
    BenchError,
    add_run_options,
    exit_on_sigterm,
    log,
    name_list,
    non_negative_int,
    parse_count,
    positive_float,
    positive_int,
)
from _irc_clients import CHANNEL
from _irc_paced import paced_payload
from _irc_report import IDLE, OFF, ON, STALL, Summary, fmt_mb
from _irc_run import run_max, run_paced
from ingest_bench import corpus_for


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench/irc",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.partition("\n\n")[2].partition("\n\nThe parts")[0],
        epilog=(
            "One run: a fresh `logcaster serve` (IRC on: irc.enabled, irc.port 0, every\n"
            "other IRC setting at its default, so the channel streams a capped number of\n"
            "lines a second and each client's output is throttled and bounded). Each client\n"
            "is a plain socket that sends NICK, USER and JOIN #logs-all and waits for the\n"
            "end of NAMES; the reading ones are read by one thread of this process (which\n"
            "counts their lines and answers PING), the stalled ones are never read again.\n"
            "Max rate: the corpus over --connections TCP connections, timed as bench/ingest\n"
            "times it (from just before the first byte to the STATS reply showing every\n"
            "event delivered). Paced: --rate events/s (the corpus' mean event size; the\n"
            "corpus cycled when it is short) for --seconds over one connection, in pieces\n"
            "cut at line ends; the lag is from the last byte sent to the STATS reply\n"
            "showing every event delivered. Untimed afterwards: STATS and GET /metrics;\n"
            "then the clients close and the server stops.\n"
            "The clients run on the same machine as the server; their reading thread's CPU\n"
            "competes with the server's. The server's own CPU is reported apart.\n"
            "Results: two tables on stdout, then one JSON line, also written to\n"
            "bench/out/irc-<timestamp>.json.\n\n"
            "examples:\n"
            "  bench/irc                                  5M lines, 50 clients, 3 runs\n"
            "  bench/irc --corpus default,traces          both corpora\n"
            "  bench/irc --lines 100k --runs 1 --seconds 3   a quick check"
        ),
    )
    parser.add_argument(
        "--lines", type=parse_count, default=5_000_000, metavar="N",
        help="corpus size in lines, e.g. 100k, 1M (default 5M: the max-rate runs last a "
        "few seconds, not half of one)",
    )  # fmt: skip
    parser.add_argument(
        "--corpus", type=name_list(sorted(_corpus.CORPORA)), default=["default"], metavar="LIST",
        help=f'corpora, comma-separated, of {", ".join(sorted(_corpus.CORPORA))} '
        '(default "default")',
    )  # fmt: skip
    parser.add_argument(
        "--clients", type=positive_int, default=50,
        help=f"IRC clients in {CHANNEL} with IRC on (default 50)",
    )  # fmt: skip
    parser.add_argument(
        "--stalled", type=non_negative_int, default=10,
        help="of those, the clients that stop reading in the stalled paced case "
        "(default 10; 0: no stalled case)",
    )  # fmt: skip
    parser.add_argument(
        "--rate", type=positive_float, default=10_000.0,
        help="paced: events a second (default 10000)",
    )  # fmt: skip
    parser.add_argument(
        "--seconds", type=positive_float, default=10.0,
        help="paced: seconds of sending (default 10)",
    )  # fmt: skip
    parser.add_argument(
        "--runs", type=positive_int, default=3, help="runs of each; medians (default 3)"
    )
    parser.add_argument(
        "--connections", type=positive_int, default=4,
        help="max rate: TCP connections the corpus is sent over (default 4)",
    )  # fmt: skip
    add_run_options(parser, _corpus.DEFAULT_SEED)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.stalled >= args.clients:
        log(f"error: --stalled {args.stalled} leaves no reading client of {args.clients}")
        return 2
    exit_on_sigterm()
    server_cmd = [args.server]
    if not Path(args.server).exists():
        log(f"error: no logcaster command at {args.server} (run `make install`)")
        return 2
    summaries: list[Summary] = []
    try:
        for name in args.corpus:
            with corpus_for(args.lines, args.seed, args.keep_corpus, name) as corpus:
                summaries.append(_bench_corpus(args, server_cmd, corpus))
    except BenchError as exc:
        log(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        CHILDREN.kill_all()
    out = sys.stderr if args.json else sys.stdout
    print(_irc_report.render_max_table(summaries, args), file=out)
    print(file=out)
    print(_irc_report.render_paced_table(summaries, args), file=out, flush=True)
    settings = {
        "lines": args.lines,
        "runs": args.runs,
        "clients": args.clients,
        "stalled": args.stalled,
        "rate": args.rate,
        "seconds": args.seconds,
        "connections": args.connections,
        "server": server_cmd,
    }
    doc = _irc_report.result_doc(summaries, settings)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"irc-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    log(f"results written to {path}")
    print(json.dumps(doc, separators=(",", ":")), flush=True)
    return 0


def _bench_corpus(
    args: argparse.Namespace, server_cmd: Sequence[str], corpus: _corpus.CorpusInfo
) -> Summary:
    raw = corpus.path.read_bytes()
    data = memoryview(raw)
    parts = _corpus.split(data, corpus.split_points, args.connections)
    timeout_s = max(120.0, corpus.lines / 20_000)
    # The paced payload: the corpus' mean event size times the events wanted.
    payload = paced_payload(raw, int(args.rate * args.seconds * corpus.nbytes / corpus.events))
    summary = Summary(corpus, args.clients, args.stalled)
    paced_cases = [(OFF, 0, 0), (ON, args.clients, 0)]
    if args.stalled:
        paced_cases.append((STALL, args.clients, args.stalled))
    for i in range(args.runs):
        msg = f"[{corpus.corpus}, run {i + 1}/{args.runs}] max rate:"
        for case, irc_on, clients in ((OFF, False, 0), (IDLE, True, 0), (ON, True, args.clients)):
            r = run_max(server_cmd, corpus, parts, timeout_s, irc_on, clients)
            summary.max_runs.setdefault(case, []).append(r)
            msg += f" {case} {r.events_per_s:,.0f} ev/s, CPU {r.cpu_s or 0:.2f} s"
            if clients:
                msg += f", {r.lines_read:,} lines read"
            msg += ";"
            for w in r.warnings:
                log(f"warning ({corpus.corpus}, max rate, {case}): {w}")
        log(msg.rstrip(";"))
        msg = f"[{corpus.corpus}, run {i + 1}/{args.runs}] paced:"
        for case, clients, stalled in paced_cases:
            p = run_paced(server_cmd, payload, args.rate, args.seconds, clients, stalled)
            summary.paced_runs.setdefault(case, []).append(p)
            msg += (
                f" {case} {p.sent_events_per_s:,.0f} ev/s, lag {p.lag_s:.2f} s, "
                f"CPU {p.cpu_pct or 0:.0f}%, RSS max {fmt_mb(p.rss_max)} MB"
            )
            if p.irc is not None:
                msg += (
                    f", skipped(client) {p.irc.skipped_by.get('client', 0):,}, "
                    f"cut {sum(p.irc.disconnects.values())} {p.irc.disconnects or ''}".rstrip()
                )
            msg += ";"
            for w in p.warnings:
                log(f"warning ({corpus.corpus}, paced, {case}): {w}")
        log(msg.rstrip(";"))
    return summary


if __name__ == "__main__":
    raise SystemExit(main())
