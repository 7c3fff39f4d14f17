"""Ingest-to-queryable latency under a steady load (issue 24, goal 5; run it as
`bench/latency`; see `bench/latency --help`).

The server: a fresh `logcaster serve -P DIR` per run (DIR in bench/out, on disk;
the store on, persist.fsync `interval`, every other setting at its default;
ports from its `ready` line), as bench/ingest starts it with `--persist`.

The load: the default seeded corpus (bench/_corpus.py, --lines, sent round and
round) over one TCP connection, paced: every --batch-ms (10) the sender writes
as many whole lines as `rate x time since the start` asks for (a late batch
catches up, so the mean rate holds; if the server does not read fast enough the
sends block and the achieved rate, which is reported, falls short).

The markers: after --warmup seconds of load, every 1/--markers-per-s seconds (20
a second) one marker line `[INFO] <now> latency-probe/v1: latency marker <token>`
(a unique token per run and marker) goes over a connection of its own, opened
one period ahead and closed right after the line; its send time is taken just
before the write. A connection of its own because a line is an event only once
the next line (or the end of the connection) shows it does not continue: on a
lasting connection the marker would wait `multiline.idle_timeout` (1 s). The
marker's event time is now, the corpus' is 2026-01-19, so a query with
`time_from` skips the corpus' chunks in the store.

The polls: every --poll-ms (10) one query per source for the markers not found
there yet: `QUERY keyword=<the run's token prefix> time_from=<the oldest pending
marker's time - 1 s> limit=10000 max_count=10000 source=all` ("queryable at
all": the memory buffer and the store merged) and the same with `source=store`
("queryable from the store", i.e. indexed); the tokens are read from the rows.
One keyword, not a list of tokens: the memory buffer tests every keyword on
every event it holds. A marker's latency in a source = arrival of the first
answer that holds it - its send time: an upper bound, by at most one poll
interval plus one query round trip (their medians are reported). A marker not
found in a source --marker-timeout (10) seconds after it was sent is counted as
missing there, never dropped; any missing marker makes the exit status 1. An
error answer (a query over query.timeout) is counted, and the next poll tries
again. --seconds x --markers-per-s markers are sent; the load goes on until
every marker is found or missing, then stops.

Per run: p50, p90, p99, max of each source's latencies, the load's achieved send
rate and the server's received rate over the marker window, the poll round
trips, the server's (and indexer's) CPU use, the polls whose answer said
`partial: events a..b are not indexed yet` (the indexer more than
store.max_unindexed behind: memory let those events go), and STATS at the end.

The reference, in the same run: after each LogCaster run, a standalone rsyslogd
(imtcp -> omfile, bench/_rsyslog.py's configuration) gets the same paced load
and markers, and a marker counts as found when rsyslog's output file holds it
(read on from where the last read stopped, every --poll-ms). rsyslog has no
query side, so this is "written where grep would see it"; the ratio printed is
LogCaster's p99 / rsyslog's. --no-reference skips it.

The rate: --rate R, --rates R1,R2,... (a sweep), or by default half of a
measured maximum (goal 5: "p99 <= 200 ms at half the maximum rate"): a fresh
server with the same settings is sent the corpus as fast as it reads for
--max-seconds, and its rate is Delivered's growth over that time (after 1 s)
in corpus lines (events x lines per event of the corpus).

    flock /tmp/engine-bench.lock .venv/bin/python bench/latency --runs 3
    flock /tmp/engine-bench.lock .venv/bin/python bench/latency --rates 300k,500k
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import _corpus
from _common import (
    CHILDREN,
    OUT_DIR,
    REPO,
    BenchError,
    exit_on_sigterm,
    host_info,
    log,
    name_list,
    parse_count,
    positive_float,
    positive_int,
)
from _ingest_run import finish_logcaster, start_logcaster, stop_logcaster
from _latency_ref import SOURCE as REF
from _latency_ref import run_rsyslog
from _latency_run import (
    Load,
    Markers,
    latency_summary,
    line_ends,
    poll_markers,
    tree_cpu_seconds,
)
from _query_port import parse_stats, query, stat_int, total_of
from _rsyslog import ensure_rsyslogd, reference_description

SOURCES = ("all", "store")
TARGET_P99_MS = 200.0
MAX_RATE_SETTLE_S = 1.0  # the max-rate window starts this long after the first send
FINAL_SETTLE_S = 0.5  # after the load stops, before the final STATS
STATS_KEYS = ("Total", "Dropped", "QueuePeakEvents", "Evicted", "StoreIndexed", "StoreLag")


def rate_list(text: str) -> list[float]:
    """`300k,500k,1M`: lines per second."""
    return [float(parse_count(t)) for t in text.split(",") if t.strip()]


def setting(text: str) -> tuple[str, str]:
    """`persist.fsync_interval_ms=50` -> (LOGCASTER_PERSIST__FSYNC_INTERVAL_MS, 50)."""
    key, sep, value = text.partition("=")
    section, dot, name = key.strip().partition(".")
    if not (sep and dot and section and name):
        raise argparse.ArgumentTypeError(f"expected section.key=value, not {text!r}")
    return f"LOGCASTER_{section.upper()}__{name.upper()}", value


def stats_of(port: int) -> dict[str, str]:
    return parse_stats(query(port, "STATS"))


class Bench:
    def __init__(
        self, args: argparse.Namespace, corpus: _corpus.CorpusInfo, rsyslogd: str | None
    ) -> None:
        self.args = args
        self.rsyslogd = rsyslogd
        self.corpus = corpus
        self.data = corpus.path.read_bytes()
        self.ends = line_ends(self.data)
        self.lines_per_event = corpus.lines / corpus.events
        self.bytes_per_line = corpus.nbytes / corpus.lines
        self.env = dict(args.set) or None  # --set: the server's settings beyond the defaults

    def max_rate(self) -> dict[str, Any]:
        """Send as fast as the server reads for --max-seconds: its delivered rate."""
        server = start_logcaster([self.args.server], "interval", True, self.env)
        failed = True
        try:
            load = Load(server.ingest_port, self.data, self.ends, None, self.args.batch_ms / 1000)
            load.start()
            time.sleep(MAX_RATE_SETTLE_S)
            s0, t0 = stats_of(server.query_port), time.perf_counter()
            time.sleep(self.args.max_seconds)
            server.check()
            s1, t1 = stats_of(server.query_port), time.perf_counter()
            load.finish()
            events = (total_of(s1) - total_of(s0)) / (t1 - t0)
            received = (stat_int(s1, "BytesReceived") or 0) - (stat_int(s0, "BytesReceived") or 0)
            doc = dict(
                lines_per_s=events * self.lines_per_event,
                received_lines_per_s=received / self.bytes_per_line / (t1 - t0),
                sent_lines_per_s=load.sent_rate(),
                indexed_lines_per_s=(
                    ((stat_int(s1, "StoreIndexed") or 0) - (stat_int(s0, "StoreIndexed") or 0))
                    / (t1 - t0)
                    * self.lines_per_event
                ),
                store_lag_end=stat_int(s1, "StoreLag"),
                stats=s1,
            )
            doc["exit_code"] = stop_logcaster(server, [])
            failed = False
            return doc
        finally:
            finish_logcaster(server, failed)

    def reference(self, rate: float, index: int) -> dict[str, Any] | None:
        """The same load and markers into rsyslogd, the marker read from its file."""
        if self.rsyslogd is None:
            return None
        prefix = f"lcref{os.getpid()}r{index}x{int(rate)}"
        markers, sent = run_rsyslog(self.rsyslogd, self.data, self.ends, rate, self.args, prefix)
        return {"sent_lines_per_s": sent, "latency": latency_summary(markers.markers, REF)}

    @staticmethod
    def waiting(samples: list[dict[str, str]], events_per_s: float) -> dict[str, Any]:
        """Mean events waiting in the queue (received, not yet in memory and the file)
        and durable but not yet indexed (StoreLag) over the STATS samples, and the wait
        that makes at the delivered rate (Little's law: wait = mean count / rate)."""
        out: dict[str, Any] = {"samples": len(samples)}
        for key in ("QueueEvents", "StoreLag"):
            values = [stat_int(s, key) or 0 for s in samples]
            mean = statistics.fmean(values) if values else 0.0
            out[key] = {"mean": mean, "max": max(values, default=0)}
            out[key]["ms"] = mean / events_per_s * 1000 if events_per_s > 0 else None
        return out

    def run(self, rate: float, index: int) -> dict[str, Any]:
        """One latency run at `rate` lines/s on a fresh server."""
        a = self.args
        server = start_logcaster([a.server], "interval", True, self.env)
        failed = True
        try:
            cpu0, c0 = tree_cpu_seconds(server.proc.pid), time.perf_counter()
            load = Load(server.ingest_port, self.data, self.ends, rate, a.batch_ms / 1000)
            load.start()
            time.sleep(a.warmup)
            server.check()
            s0 = stats_of(server.query_port)
            mark0 = (time.perf_counter(), load.lines)
            prefix = f"lclat{os.getpid()}r{index}x{int(rate)}"
            count = max(1, round(a.seconds * a.markers_per_s))
            markers = Markers(server.ingest_port, prefix, 1 / a.markers_per_s, count, a.lose_marker)
            markers.start()
            window: dict[str, Any] = {}

            def done() -> bool:
                if not markers.done():
                    return False
                if not window:
                    window.update(
                        sent=load.sent_rate(mark0),
                        stats=stats_of(server.query_port),
                        t=time.perf_counter(),
                    )
                return True

            polls = poll_markers(
                server.query_port, markers, tuple(a.sources), a.poll_ms / 1000,
                a.marker_timeout, done, server.check,
            )  # fmt: skip
            load.finish()
            time.sleep(FINAL_SETTLE_S)
            server.check()
            final = stats_of(server.query_port)
            window["delivered"] = (total_of(window["stats"]) - total_of(s0)) / (
                window["t"] - mark0[0]
            )
            cpu = (tree_cpu_seconds(server.proc.pid) - cpu0) / (time.perf_counter() - c0)
            s1, dt_s = window["stats"], window["t"] - mark0[0]
            received = (stat_int(s1, "BytesReceived") or 0) - (stat_int(s0, "BytesReceived") or 0)
            doc: dict[str, Any] = dict(
                rate=rate,
                run=index,
                sent_lines_per_s=window["sent"],
                received_lines_per_s=received / self.bytes_per_line / dt_s,
                delivered_lines_per_s=(total_of(s1) - total_of(s0)) / dt_s * self.lines_per_event,
                load_lines=load.lines,
                markers=len(markers.markers),
                lost_on_purpose=sum(m.lost for m in markers.markers),
                latency={s: latency_summary(markers.markers, s) for s in a.sources},
                poll_rtt_ms={
                    s: (statistics.median(v) if v else None) for s, v in polls.rtt_ms.items()
                },
                polls=polls.queries,
                poll_errors={s: len(v) for s, v in polls.errors.items()},
                partial_answers=polls.partial,
                poll_error_samples={s: v[:3] for s, v in polls.errors.items()},
                server_cpu=cpu,
                waiting=self.waiting(polls.stats, window["delivered"]),
                stats=final,
            )
            doc["exit_code"] = stop_logcaster(server, [])
            failed = False
            return doc
        finally:
            finish_logcaster(server, failed)


def _ms(x: object) -> str:
    return "-" if not isinstance(x, (int, float)) else f"{x:,.0f}"


def report(doc: dict[str, Any]) -> None:
    runs: list[dict[str, Any]] = doc["runs"]
    c = doc["corpus"]
    print(
        f"corpus {c['path']}: {c['lines']:,} lines, {c['events']:,} events (sent round and round);"
        f" markers {doc['markers_per_s']:g}/s for {doc['seconds']:g} s after {doc['warmup']:g} s,"
        f" polls every {doc['poll_ms']:g} ms"
    )
    if doc["settings"]:
        print("server settings: " + ", ".join(f"{k}={v}" for k, v in doc["settings"].items()))
    if "max_rate" in doc:
        m = doc["max_rate"]
        print(
            f"maximum rate: {m['lines_per_s']:,.0f} lines/s delivered"
            f" ({m['received_lines_per_s']:,.0f} received, {m['sent_lines_per_s']:,.0f} sent,"
            f" {m['indexed_lines_per_s']:,.0f} indexed;"
            f" StoreLag {m['store_lag_end']} at the end)"
            f" over {doc['max_seconds']:g} s, as fast as the server reads"
        )
    sources: list[str] = doc["sources"]
    head: tuple[str, ...] = ("rate lines/s", "sent/s", "server/s", "markers")
    for s in sources:
        head += (f"{s} p50", "p90", "p99", "max", "miss")
    head += (f"poll ms {'/'.join(sources)}", "queue ms", "StoreLag ms", "CPU")
    rows = [head]
    for r in runs:
        row: tuple[str, ...] = (
            f"{r['rate']:,.0f}", f"{r['sent_lines_per_s']:,.0f}",
            f"{r['received_lines_per_s']:,.0f}", str(r["markers"]),
        )  # fmt: skip
        for s in sources:
            lat = r["latency"][s]
            row += (*(_ms(lat[k]) for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")),)
            row += (str(lat["missing"]),)
        rtt = "/".join(f"{r['poll_rtt_ms'][s] or 0:.1f}" for s in sources)
        w = r["waiting"]
        row += (rtt, _ms(w["QueueEvents"]["ms"]), _ms(w["StoreLag"]["ms"]))
        row += (f"{r['server_cpu'] * 100:.0f}%",)
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    print(
        "\nlatency (ms) from send to the first answer holding the marker; queue ms and"
        " StoreLag ms: mean QueueEvents and StoreLag (STATS every 0.1 s) / delivered rate;"
        " CPU: server + indexer"
    )
    for i, row in enumerate(rows):
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print()
    for rate in dict.fromkeys(r["rate"] for r in runs):
        at = [r for r in runs if r["rate"] == rate]
        parts = []
        for s in sources:
            p99 = [r["latency"][s]["p99_ms"] for r in at]
            known = [p for p in p99 if p is not None]
            med = statistics.median(known) if known else None
            missing = sum(r["latency"][s]["missing"] for r in at)
            met = med is not None and med <= TARGET_P99_MS and not missing
            parts.append(
                f"{s} p99 median {_ms(med)} ms ({'<=' if met else 'NOT <='} {TARGET_P99_MS:g})"
                + (f", {missing} MISSING" if missing else "")
            )
        half = f" ({doc['fraction']:g} x the maximum)" if doc.get("half_rate") == rate else ""
        print(f"{rate:,.0f} lines/s{half}, {len(at)} run(s): " + "; ".join(parts))
    refs = [r for r in runs if r.get("reference")]
    if refs:
        print(
            f"\nreference: {doc['reference']}; the same load and markers,"
            " a marker counts when rsyslog's file holds it (read every poll)"
        )
        for r in refs:
            lat = r["reference"]["latency"]
            ms = " / ".join(_ms(lat[k]) for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms"))
            print(
                f"  run {r['run']} at {r['rate']:,.0f}/s: sent"
                f" {r['reference']['sent_lines_per_s']:,.0f}/s, p50 / p90 / p99 / max {ms} ms,"
                f" missing {lat['missing']}"
            )
        for rate in dict.fromkeys(r["rate"] for r in refs):
            at = [r for r in refs if r["rate"] == rate]
            ref99 = [r["reference"]["latency"]["p99_ms"] for r in at]
            known = [p for p in ref99 if p is not None]
            if not known:
                continue
            base = statistics.median(known)
            ratios = []
            for s in sources:
                ours = [r["latency"][s]["p99_ms"] for r in at if r["latency"][s]["p99_ms"]]
                if ours and base > 0:
                    ratios.append(f"{s} {statistics.median(ours) / base:.2f}x")
            print(
                f"{rate:,.0f} lines/s: rsyslog p99 median {_ms(base)} ms; LogCaster/rsyslog p99: "
                + ", ".join(ratios)
            )
    for r in runs:
        stats = ", ".join(f"{k}={r['stats'].get(k, '-')}" for k in STATS_KEYS)
        print(f"STATS at the end of run {r['run']} at {r['rate']:,.0f}/s: {stats}")
        for s, n in r["partial_answers"].items():
            print(
                f"  {n} polls of source={s} answered `partial: events a..b are not indexed yet`"
                " (the indexer is over store.max_unindexed behind; memory let them go)"
            )
        for s, n in r["poll_errors"].items():
            if n:
                sample = r["poll_error_samples"][s][0]
                print(f"  {n} polls of source={s} answered an error: {sample}")
        for s in sources:
            if r["latency"][s]["missing"]:
                tokens = " ".join(r["latency"][s]["missing_tokens"])
                print(f"  missing in source={s}: {tokens}")
    print(f"load average {os.getloadavg()[0]:.2f}; the full STATS lines are in the JSON (--json)")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/latency", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    add = parser.add_argument
    add("--lines", type=parse_count, default=1_000_000, help="corpus lines (default 1M)")
    add("--rate", type=parse_count, help="lines/s of the load (default: half the maximum)")
    add("--rates", type=rate_list, help="a sweep, e.g. 300k,500k (lines/s)")
    add("--fraction", type=positive_float, default=0.5, help="of the maximum rate (0.5)")
    add("--max-seconds", type=positive_float, default=5.0, help="the maximum rate's run (5)")
    add("--runs", type=positive_int, default=1, help="runs per rate (1)")
    add("--seconds", type=positive_float, default=10.0, help="markers are sent this long (10)")
    add("--warmup", type=float, default=2.0, help="load before the first marker, s (2)")
    add("--markers-per-s", type=positive_float, default=20.0, help="(20)")
    add("--batch-ms", type=positive_float, default=10.0, help="the load's pacing step (10)")
    add("--poll-ms", type=positive_float, default=10.0, help="poll interval (10)")
    add("--sources", type=name_list(SOURCES), default=list(SOURCES), help="all,store (both)")
    add("--marker-timeout", type=positive_float, default=10.0, help="s, then missing (10)")
    add(
        "--set", type=setting, action="append", default=[], metavar="SECTION.KEY=VALUE",
        help="a server setting, e.g. persist.fsync_interval_ms=50 (default: all defaults)",
    )  # fmt: skip
    add("--no-reference", action="store_true", help="no rsyslog run beside each run")
    add("--json", type=Path, metavar="OUT", help="write the figures to OUT")
    add("--server", default=str(REPO / ".venv" / "bin" / "logcaster"))
    add("--seed", type=int, default=_corpus.DEFAULT_SEED, help=argparse.SUPPRESS)
    # Record every N-th marker without sending it: checks that a lost one is reported.
    add("--lose-marker", type=int, default=0, metavar="N", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    exit_on_sigterm()
    if os.getloadavg()[0] > 0.5:
        log(f"warning: load average {os.getloadavg()[0]:.2f} before the run: timings may suffer")
    path = _corpus.corpus_path(OUT_DIR, args.lines)
    corpus = _corpus.load_cached(path, args.lines, args.seed)
    if corpus is None:
        log(f"generating corpus: {args.lines:,} lines -> {path} (kept for later runs)")
        corpus = _corpus.generate(path, args.lines, args.seed)
    rsyslogd = None if args.no_reference else ensure_rsyslogd()
    if rsyslogd is None and not args.no_reference:
        log("warning: rsyslogd is missing and could not be installed: no reference")
    bench = Bench(args, corpus, rsyslogd)
    doc: dict[str, Any] = dict(
        bench="latency", markers_per_s=args.markers_per_s, seconds=args.seconds,
        warmup=args.warmup, poll_ms=args.poll_ms, batch_ms=args.batch_ms,
        marker_timeout_s=args.marker_timeout, max_seconds=args.max_seconds,
        sources=args.sources, fraction=args.fraction, settings=dict(args.set),
    )  # fmt: skip
    doc["corpus"] = {k: v for k, v in corpus.to_json().items() if k != "split_points"}
    doc["corpus"]["path"] = str(corpus.path)
    if rsyslogd is not None:
        doc["reference"] = reference_description(rsyslogd)
    try:
        if args.rates:
            rates = args.rates
        elif args.rate:
            rates = [float(args.rate)]
        else:
            log(f"measuring the maximum rate ({args.max_seconds:g} s as fast as it reads)")
            doc["max_rate"] = bench.max_rate()
            half = round(doc["max_rate"]["lines_per_s"] * args.fraction, -3)
            doc["half_rate"] = max(1000.0, half)
            rates = [doc["half_rate"]]
        doc["runs"] = []
        for rate in rates:
            for i in range(1, args.runs + 1):
                log(f"run {i} at {rate:,.0f} lines/s")
                doc["runs"].append(bench.run(rate, i))
                if rsyslogd is not None:
                    log(f"run {i} at {rate:,.0f} lines/s: rsyslog")
                    doc["runs"][-1]["reference"] = bench.reference(rate, i)
    except BenchError as exc:
        log(f"error: {exc}")
        return 1
    finally:
        CHILDREN.kill_all()
    report(doc)
    if args.json:
        doc |= dict(
            time=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            git=os.popen(f"git -C {REPO} rev-parse --short HEAD").read().strip(),
            host=host_info(), load_average=os.getloadavg()[0],
        )  # fmt: skip
        args.json.write_text(json.dumps(doc, indent=2, default=str) + "\n")
        log(f"figures written to {args.json}")
    missing = sum(r["latency"][s]["missing"] for r in doc["runs"] for s in args.sources)
    if missing:
        log(f"error: {missing} marker lookups never answered (see `missing` above)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
