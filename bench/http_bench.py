"""LogCaster HTTP ingest benchmark (run it as `bench/http`; see `bench/http --help`).

Per corpus (the seed-style default and `traces`, bench/_corpus.py), in the same
run and on the same server build: the corpus over TCP lines through
bench/ingest's own machinery (bench/_ingest_run.py), and the same events as
`POST /api/v1/logs` bodies from several concurrent aiohttp clients, once per
body kind (NDJSON, and plain text as a control: bench/_http_bodies.py says
how the bodies are made). Each run has a fresh server; the runs of one index
go TCP, then each body kind, so drift hits all alike. Reports the median
events/s of each and the ratio to TCP, against the target (NDJSON >= 0.5x).

`--fanout` adds the cost of live tails: the NDJSON ingest of the first corpus
again with 0, 10 and 100 `GET /api/v1/tail` streams open (bench/_http_tail.py
in its own process, reading as fast as the server writes), the ingest rate
against 0 streams, and what each stream got and was told it skipped.

The parts: bench/_http_bodies.py (bodies), bench/_http_run.py (one run),
bench/_http_tail.py (the subscribers), bench/_http_report.py (tables, JSON).
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
import _http_report
from _common import (
    CHILDREN,
    MB,
    OUT_DIR,
    BenchError,
    add_run_options,
    exit_on_sigterm,
    log,
    name_list,
    parse_count,
    positive_int,
)
from _http_bodies import KINDS, Bodies, frame_events, make_bodies
from _http_report import CorpusSummary, FanoutSummary
from _http_run import HttpRun, run_http
from _ingest_run import run_logcaster
from ingest_bench import corpus_for


def _counts(text: str) -> list[int]:
    try:
        values = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not values or values[0] < 0 or values[-1] > 250:
        raise argparse.ArgumentTypeError("subscriber counts must be 0..250")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench/http",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.partition("\n\n")[2].partition("\n\nThe parts")[0],
        epilog=(
            "Timing, both transports: from just before the first byte (every connection\n"
            "open) to the STATS reply showing every event delivered (bench/ingest's rule).\n"
            "Bodies are made before any clock starts. Checked per run: the answers'\n"
            "`accepted` sum = the events sent = STATS Total; warnings otherwise.\n"
            "Results: tables on stdout, then one JSON line, also written to\n"
            "bench/out/http-<timestamp>.json.\n\n"
            "examples:\n"
            "  bench/http                                  1M lines, both corpora, 3 runs\n"
            "  bench/http --lines 100k --runs 1            a quick check\n"
            "  bench/http --fanout --corpus default        with 0, 10, 100 live tails"
        ),
    )
    parser.add_argument(
        "--lines", type=parse_count, default=1_000_000, metavar="N",
        help="corpus size in lines, e.g. 100k, 1M (default 1M)",
    )  # fmt: skip
    parser.add_argument(
        "--corpus", type=name_list(sorted(_corpus.CORPORA)), default=["default", "traces"],
        metavar="LIST", help='corpora, comma-separated (default "default,traces")',
    )  # fmt: skip
    parser.add_argument(
        "--bodies", type=name_list(KINDS), default=["ndjson", "text", "otlp", "loki", "esbulk"],
        metavar="LIST",
        help=f'HTTP body kinds, of {", ".join(KINDS)} (default "ndjson,text,otlp,loki,esbulk")',
    )  # fmt: skip
    parser.add_argument(
        "--runs", type=positive_int, default=3, help="runs of each; medians (default 3)"
    )
    parser.add_argument(
        "--clients", type=positive_int, default=4,
        help="concurrent HTTP clients, and TCP connections for the reference (default 4)",
    )  # fmt: skip
    parser.add_argument(
        "--batch", type=positive_int, default=2000, help="events per POST (default 2000)"
    )
    parser.add_argument(
        "--fanout", action="store_true",
        help="also measure NDJSON ingest with live-tail subscribers (GET /api/v1/tail)",
    )  # fmt: skip
    parser.add_argument(
        "--subscribers", type=_counts, default=[0, 10, 100], metavar="LIST",
        help='subscriber counts for --fanout (default "0,10,100")',
    )  # fmt: skip
    add_run_options(parser, _corpus.DEFAULT_SEED)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    exit_on_sigterm()
    server_cmd = [args.server]
    if not Path(args.server).exists():
        log(f"error: no logcaster command at {args.server} (run `make install`)")
        return 2
    summaries: list[CorpusSummary] = []
    fanout: FanoutSummary | None = None
    try:
        for name in args.corpus:
            with corpus_for(args.lines, args.seed, args.keep_corpus, name) as corpus:
                bodies = _bodies(corpus, args.bodies, args.batch)
                summaries.append(_bench_corpus(args, server_cmd, corpus, bodies))
                if args.fanout and fanout is None:
                    ndjson = bodies.get("ndjson") or make_bodies(
                        frame_events(corpus.path.read_bytes()), "ndjson", args.batch
                    )
                    fanout = _bench_fanout(args, server_cmd, corpus, ndjson)
    except BenchError as exc:
        log(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        CHILDREN.kill_all()
    out = sys.stderr if args.json else sys.stdout
    print(_http_report.render_table(summaries, args.clients, args.batch, args.runs), file=out)
    if fanout is not None:
        print("\n" + _http_report.render_fanout(fanout, args.clients, args.runs), file=out)
    out.flush()
    settings = {
        "lines": args.lines,
        "runs": args.runs,
        "clients": args.clients,
        "batch_events": args.batch,
        "bodies": args.bodies,
        "server": server_cmd,
    }
    doc = _http_report.result_doc(summaries, fanout, settings)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"http-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    log(f"results written to {path}")
    print(json.dumps(doc, separators=(",", ":")), flush=True)
    return 0


def _bodies(corpus: _corpus.CorpusInfo, kinds: Sequence[str], batch: int) -> dict[str, Bodies]:
    """Every body kind of the corpus, made before any clock starts."""
    texts = frame_events(corpus.path.read_bytes())
    out = {kind: make_bodies(texts, kind, batch) for kind in kinds}
    for b in out.values():
        log(
            f"  {b.kind} bodies: {len(b.bodies):,} of up to {batch:,} events, "
            f"{b.nbytes / MB:,.1f} MB, {b.events:,} events"
        )
    if len(texts) != corpus.events:
        log(f"warning: {len(texts):,} events framed, the corpus holds {corpus.events:,}")
    return out


def _bench_corpus(
    args: argparse.Namespace,
    server_cmd: Sequence[str],
    corpus: _corpus.CorpusInfo,
    bodies: dict[str, Bodies],
) -> CorpusSummary:
    data = memoryview(corpus.path.read_bytes())
    parts = _corpus.split(data, corpus.split_points, args.clients)
    timeout_s = _timeout(corpus)
    summary = CorpusSummary(corpus)
    for i in range(args.runs):
        tcp = run_logcaster(server_cmd, corpus, parts, timeout_s)
        summary.tcp.append(tcp)
        tcp_rate = corpus.events / tcp.seconds
        msg = f"[{corpus.corpus}, run {i + 1}/{args.runs}] tcp: {tcp_rate:,.0f} ev/s"
        for w in tcp.warnings:
            log(f"warning (tcp): {w}")
        for kind, b in bodies.items():
            r = run_http(server_cmd, corpus, b, args.clients, timeout_s)
            summary.http.setdefault(kind, []).append(r)
            msg += f"; http {kind}: {r.events_per_s:,.0f} ev/s ({r.requests:,} POSTs)"
            _warn(f"http {kind}", r)
        log(msg)
    return summary


def _bench_fanout(
    args: argparse.Namespace, server_cmd: Sequence[str], corpus: _corpus.CorpusInfo, bodies: Bodies
) -> FanoutSummary:
    summary = FanoutSummary(corpus, bodies.kind)
    for i in range(args.runs):
        for n in args.subscribers:
            r = run_http(server_cmd, corpus, bodies, args.clients, _timeout(corpus), n)
            summary.runs.setdefault(n, []).append(r)
            msg = f"[fan-out, run {i + 1}/{args.runs}] {n} subscribers: {r.events_per_s:,.0f} ev/s"
            if n:
                events, skipped = r.tail.get("events"), r.tail.get("skipped")
                assert isinstance(events, list) and isinstance(skipped, list)
                msg += (
                    f", per stream {sum(events) / n:,.0f} received, {sum(skipped) / n:,.0f} skipped"
                )
            log(msg)
            _warn(f"fan-out {n}", r)
    return summary


def _warn(what: str, r: HttpRun) -> None:
    for w in r.warnings:
        log(f"warning ({what}): {w}")


def _timeout(corpus: _corpus.CorpusInfo) -> float:
    return max(120.0, corpus.lines / 20_000)


if __name__ == "__main__":
    raise SystemExit(main())
