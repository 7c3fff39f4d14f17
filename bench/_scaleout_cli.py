"""LogCaster scale-out benchmark (run it as `bench/scaleout`; see `bench/scaleout --help`).

Issue 22: "lines/s into PostgreSQL with 1, 2 and 4 writers, and 1 and 2 ingest
nodes, beside the single-node embedded store on the same corpus in the same
run. Also the time from ingest to queryable in PostgreSQL (p50 and p99), and
query times for the bench/query set against PostgreSQL beside the embedded
store and ripgrep. This machine has 2 cores, so say which resource saturates."

Each run index loads the corpus into a fresh embedded store (the reference,
`serve -P DIR`), then through every (nodes, writers) setup into a fresh
PostgreSQL schema (dropped after) via a private redis-server (a free port,
AOF on, appendfsync everysec; emptied between runs): drift hits them alike.
The last run's reference node and last setup's schema stay for the queries:
a query node (`serve --history URL`) answers bench/query's set from
PostgreSQL, timed beside the reference node and `rg -c`. Then the paced runs:
one node, the first writer count, at half the first setup's rate (below
capacity), for the ingest-to-queryable latency without a backlog.

The parts: bench/_scaleout_procs.py (processes, schemas, CPU),
bench/_scaleout_run.py (the runs), bench/_scaleout_queries.py (the query set),
bench/_scaleout_report.py (tables, JSON). This module holds the command line
and the loops.

    flock /tmp/engine-bench.lock .venv/bin/python bench/scaleout --lines 1M
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import psycopg
import redis

import _corpus
from _common import (
    CHILDREN,
    OUT_DIR,
    BenchError,
    add_run_options,
    ensure_command,
    exit_on_sigterm,
    log,
    non_negative_int,
    parse_count,
    positive_int,
)
from _scaleout_procs import PgAdmin, Proc, RedisServer, start_serve, wait_ready
from _scaleout_queries import QueryRow, time_queries
from _scaleout_report import Results, med, render, result_doc
from _scaleout_run import Ctx, log_warnings, pg_latency, run_paced, run_reference, run_scaleout
from ingest_bench import corpus_for

POSTGRES = os.environ.get("LOGCASTER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
PACED_SHARE = 0.5  # --paced-rate's default: this share of the first setup's median rate


def int_list(text: str) -> list[int]:
    """An argparse type: comma-separated counts of at least 1, e.g. `1,2,4`."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of counts: {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"counts of at least 1, not {text!r}")
    return list(dict.fromkeys(values))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench/scaleout",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.partition("\n\n")[2].partition("\n\nThe parts")[0],
        epilog=(
            "examples:\n"
            "  bench/scaleout                            200k lines, 3 runs\n"
            "  bench/scaleout --lines 1M --corpus traces\n"
            "  bench/scaleout --lines 2000 --runs 1 --writers 1 --nodes 1   a quick check\n"
            "Use flock /tmp/engine-bench.lock, as the other benches, so that two never share "
            "the machine."
        ),
    )
    parser.add_argument(
        "--lines", type=parse_count, default=200_000, metavar="N",
        help="corpus size in lines, e.g. 200k (default), 1M",
    )  # fmt: skip
    parser.add_argument(
        "--corpus", choices=sorted(_corpus.CORPORA), default="default",
        help="the corpus (bench/_corpus.py; default: default)",
    )  # fmt: skip
    parser.add_argument(
        "--nodes", type=int_list, default=[1, 2], metavar="LIST",
        help="ingest node counts, comma-separated (default 1,2)",
    )  # fmt: skip
    parser.add_argument(
        "--writers", type=int_list, default=[1, 2, 4], metavar="LIST",
        help="writer counts, comma-separated (default 1,2,4)",
    )  # fmt: skip
    parser.add_argument(
        "--runs", type=positive_int, default=3,
        help="runs of every load, and timed runs of every query; medians (default 3)",
    )  # fmt: skip
    parser.add_argument(
        "--connections", type=positive_int, default=2,
        help="TCP connections per node, and to the reference (default 2)",
    )  # fmt: skip
    parser.add_argument(
        "--node-store", choices=["on", "off"], default="on",
        help="the ingest nodes' own store (default on: what -P turns on)",
    )  # fmt: skip
    parser.add_argument(
        "--keyword-index", choices=["on", "off"], default="on",
        help="the pg_trgm index on the text (off: `migrate --keyword-index off` first)",
    )  # fmt: skip
    parser.add_argument(
        "--paced-rate", type=non_negative_int, default=0, metavar="LINES_PER_S",
        help=f"paced runs' rate (default 0: {PACED_SHARE:g} of the first setup's median)",
    )  # fmt: skip
    parser.add_argument(
        "--paced-seconds", type=non_negative_int, default=10, metavar="S",
        help="paced runs' length (default 10; 0: no paced runs)",
    )  # fmt: skip
    parser.add_argument(
        "--postgres", default=POSTGRES, metavar="URL",
        help=f"the PostgreSQL to use; a schema per run is made there (default {POSTGRES})",
    )  # fmt: skip
    add_run_options(parser, _corpus.DEFAULT_SEED)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.node_store = args.node_store == "on"
    exit_on_sigterm()
    if not Path(args.server).exists() and shutil.which(args.server) is None:
        log(f"error: no logcaster command at {args.server} (run `make install`)")
        return 2
    tools = {}
    for command, package in (("redis-server", "redis-server"), ("rg", "ripgrep")):
        found = ensure_command(command, package)
        if found is None:
            log(f"error: {command} is missing and could not be installed ({package})")
            return 2
        tools[command] = found
    if os.getloadavg()[0] > 0.5:
        log(f"warning: load average {os.getloadavg()[0]:.2f} before the run: timings may suffer")
    try:
        with corpus_for(args.lines, args.seed, args.keep_corpus, args.corpus) as corpus:
            res = bench(args, corpus, tools)
    except BenchError as exc:
        log(f"error: {exc}")
        return 1
    except (psycopg.Error, redis.RedisError, OSError) as exc:
        log(f"error: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        CHILDREN.kill_all()
    out = sys.stderr if args.json else sys.stdout
    print(render(res, args), file=out, flush=True)
    settings = {
        k: getattr(args, k)
        for k in ("lines", "corpus", "nodes", "writers", "runs", "connections", "node_store",
                  "keyword_index", "paced_rate", "paced_seconds", "server")
    }  # fmt: skip
    doc = result_doc(res, settings)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"scaleout-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    log(f"results written to {path}")
    if args.json:
        print(json.dumps(doc, separators=(",", ":")), flush=True)
    return 0


def bench(args: argparse.Namespace, corpus: _corpus.CorpusInfo, tools: dict[str, str]) -> Results:
    work = OUT_DIR / f"scaleout-{os.getpid()}"
    pg = PgAdmin(args.postgres, keyword_index=args.keyword_index == "on")
    redis = RedisServer(tools["redis-server"], work / "redis")
    res = Results(corpus)
    keep: list[Proc] = []
    try:
        redis.start()
        ctx = Ctx([args.server], redis, pg, args.connections, args.node_store, work)
        raw = corpus.path.read_bytes()
        data = memoryview(raw)
        setups = [(n, w) for n in args.nodes for w in args.writers]
        kept_schema = None
        for i in range(args.runs):
            last = i == args.runs - 1
            tag = f"[{corpus.corpus}, run {i + 1}/{args.runs}]"
            ref, node = run_reference(ctx, corpus, data, keep_alive=last)
            res.refs.append(ref)
            keep += [node] if node is not None else []
            log(f"{tag} embedded store: {ref.lines_per_s:,.0f} lines/s ({ref.seconds:.2f} s)")
            log_warnings("embedded store", ref.warnings)
            for n, w in setups:
                keep_this = last and (n, w) == setups[-1]
                run, schema = run_scaleout(ctx, corpus, data, n, w, keep_this)
                kept_schema = schema or kept_schema
                res.loads.setdefault((n, w), []).append(run)
                p50, p99 = run.latency.p50 or 0.0, run.latency.p99 or 0.0
                log(
                    f"{tag} {n} node(s), {w} writer(s): {run.lines_per_s:,.0f} lines/s "
                    f"({run.seconds:.2f} s), queryable p50 {p50:.2f} s, p99 {p99:.2f} s"
                )
                log_warnings(f"{n} node(s), {w} writer(s)", run.warnings)
        if kept_schema is not None and keep:
            res.queries = queries(args, ctx, corpus, keep[0], kept_schema, tools["rg"])
            res.query_schema_events = pg_latency(pg, kept_schema)[0]
            pg.drop(kept_schema)
        for node in keep:
            warnings: list[str] = []
            node.stop(warnings)
            log_warnings("the reference node", warnings)
            node.finish(failed=bool(warnings))
        keep = []
        if args.paced_seconds:
            first = res.loads[setups[0]]
            rate = args.paced_rate or PACED_SHARE * (med(first, lambda r: r.lines_per_s) or 0)
            for i in range(args.runs):
                p = run_paced(ctx, raw, corpus, setups[0][1], rate, args.paced_seconds)
                res.paced.append(p)
                log(
                    f"[{corpus.corpus}, paced {i + 1}/{args.runs}] {rate:,.0f} lines/s: "
                    f"queryable p50 {p.latency.p50 or 0:.3f} s, p99 {p.latency.p99 or 0:.3f} s"
                )
                log_warnings("paced", p.warnings)
        return res
    finally:
        for node in keep:
            node.finish(failed=False)
        redis.close()
        for problem in pg.close():
            log(f"warning: {problem}")
        shutil.rmtree(work, ignore_errors=True)


def queries(
    args: argparse.Namespace,
    ctx: Ctx,
    corpus: _corpus.CorpusInfo,
    reference: Proc,
    schema: str,
    rg: str,
) -> list[QueryRow]:
    """A query node on `schema`; bench/query's set on it, on `reference`, and rg."""
    url = ctx.pg.url(schema, "history")
    node = start_serve(ctx.server_cmd, "history", ["--history", url])
    failed = True
    try:
        wait_ready(node)
        log(f"timing queries: PostgreSQL ({schema}), the embedded store, rg")
        rows = time_queries(
            reference.ports["query"], node.ports["query"], corpus.path, rg, args.runs
        )
        warnings: list[str] = []
        node.stop(warnings)
        log_warnings("query node", warnings)
        failed = False
        return rows
    finally:
        node.finish(failed)
