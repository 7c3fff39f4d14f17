"""LogCaster dashboard benchmark (run it as `bench/dashboard`; see `bench/dashboard --help`).

The cost of open dashboards (issue 20): the TCP ingest rate of a corpus with
P headless Chromium pages on the dashboard's live tail (`#live`), against the
same ingest with none, in the same run. Each run index does the run with no
page, then the one with P pages, each against a fresh server, so drift hits
both alike. Reports per corpus the median events/s of each, their ratio
against the target (at most 10% slower: >= 0.90), the server's CPU seconds,
and what the pages showed (the server's count of events it skipped for them,
the skipped rows they drew).

The parts: bench/_dashboard_run.py (the browser and one run); the corpus and
the ingest machinery are bench/ingest's (bench/_corpus.py, bench/_ingest_run.py).
This module holds the command line, the loops and the report.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import _corpus
from _common import (
    CHILDREN,
    MB,
    OUT_DIR,
    BenchError,
    add_run_options,
    aligned_table,
    exit_on_sigterm,
    fmt_1,
    fmt_2,
    fmt_int,
    host_info,
    log,
    name_list,
    parse_count,
    positive_int,
)
from _dashboard_run import CHROMIUM, DashboardRun, Dashboards, run_dashboard
from _ingest_report import git_rev
from ingest_bench import corpus_for

TARGET_RATIO = 0.90  # events/s with the pages open against none: at most 10% slower


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench/dashboard",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.partition("\n\n")[2].partition("\n\nThe parts")[0],
        epilog=(
            "One run: a fresh `logcaster serve`; P pages (each in its own browser context,\n"
            "1280x800) open http://127.0.0.1:<http port>/#live and are waited for until\n"
            "each one's `.state` reads `live` and STATS counts P tail subscribers; then the\n"
            "corpus goes over --connections TCP connections, timed as bench/ingest times\n"
            "it (from just before the first byte to the STATS reply showing every event\n"
            "delivered). Afterwards, untimed: the pages finish drawing and each is asked\n"
            "what it shows; then they close and the server stops.\n"
            "The browser is Debian's Chromium (--chromium) through Playwright, one for the\n"
            "whole benchmark; Playwright's own browser download is never used. The pages\n"
            "run on the same machine as the server: their CPU competes with the server's,\n"
            "which is part of what open dashboards cost there; the server's own CPU\n"
            "seconds and the browser's are reported apart.\n"
            "Results: a table on stdout, then one JSON line, also written to\n"
            "bench/out/dashboard-<timestamp>.json.\n\n"
            "examples:\n"
            "  bench/dashboard                                1M lines, 0 and 5 pages, 3 runs\n"
            "  bench/dashboard --corpus default,traces        both corpora\n"
            "  bench/dashboard --lines 100k --runs 1 --pages 1   a quick check"
        ),
    )
    parser.add_argument(
        "--lines", type=parse_count, default=1_000_000, metavar="N",
        help="corpus size in lines, e.g. 100k, 1M (default 1M)",
    )  # fmt: skip
    parser.add_argument(
        "--corpus", type=name_list(sorted(_corpus.CORPORA)), default=["default"], metavar="LIST",
        help=f'corpora, comma-separated, of {", ".join(sorted(_corpus.CORPORA))} '
        '(default "default")',
    )  # fmt: skip
    parser.add_argument(
        "--pages", type=positive_int, default=5,
        help="dashboard pages open on the live tail, against none (default 5)",
    )  # fmt: skip
    parser.add_argument(
        "--runs", type=positive_int, default=3, help="runs of each; medians (default 3)"
    )
    parser.add_argument(
        "--connections", type=positive_int, default=4,
        help="TCP connections the corpus is sent over (default 4)",
    )  # fmt: skip
    parser.add_argument(
        "--chromium", default=str(CHROMIUM), metavar="PATH",
        help=f"the Chromium to drive (default {CHROMIUM}, Debian's)",
    )  # fmt: skip
    add_run_options(parser, _corpus.DEFAULT_SEED, tables="table")
    return parser


def _median(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


@dataclass
class Summary:
    corpus: _corpus.CorpusInfo
    pages: int
    runs: dict[int, list[DashboardRun]] = field(default_factory=dict)  # pages -> runs

    def events_per_s(self, pages: int) -> float | None:
        return _median([r.events_per_s for r in self.runs.get(pages, [])])

    def cpu_s(self, pages: int) -> float | None:
        return _median([r.cpu_s for r in self.runs.get(pages, [])])

    def browser_cpu_s(self, pages: int) -> float | None:
        return _median([r.browser_cpu_s for r in self.runs.get(pages, [])])

    @property
    def ratio(self) -> float | None:
        ours, base = self.events_per_s(self.pages), self.events_per_s(0)
        return ours / base if ours is not None and base else None

    def per_page(self, pages: int, what: str) -> float | None:
        """The median over runs of the mean over pages of `what`: `skipped` (the
        server's TailSkipped over the pages), or a PageView field."""
        means: list[float | None] = []
        for r in self.runs.get(pages, []):
            if not pages:
                continue
            if what == "skipped":
                means.append(None if r.tail_skipped is None else r.tail_skipped / pages)
            elif r.views:
                means.append(sum(getattr(v, what) for v in r.views) / len(r.views))
        return _median(means)


def _verdict(ratio: float | None) -> str:
    if ratio is None:
        return "-"
    return f">={TARGET_RATIO:.2f} {'PASS' if ratio >= TARGET_RATIO else 'FAIL'}"


def render_table(summaries: Sequence[Summary], connections: int, runs: int) -> str:
    rows: list[tuple[str, ...]] = [
        ("corpus", "pages", "events/s", "vs 0 pages", "target", "server CPU s",
         "browser CPU s", "skipped/page", "rows/page", "skipped rows drawn"),
    ]  # fmt: skip
    for s in summaries:
        name = s.corpus.corpus
        for pages in (0, s.pages):
            rate, base = s.events_per_s(pages), s.events_per_s(0)
            rows.append(
                (
                    name,
                    str(pages),
                    fmt_int(rate),
                    fmt_2(rate / base) if rate is not None and base else "-",
                    _verdict(s.ratio) if pages else "",
                    fmt_2(s.cpu_s(pages)),
                    fmt_2(s.browser_cpu_s(pages)),
                    fmt_int(s.per_page(pages, "skipped")) if pages else "-",
                    fmt_int(s.per_page(pages, "rows")) if pages else "-",
                    fmt_1(s.per_page(pages, "skipped_rows")) if pages else "-",
                )
            )
            name = ""
    sizes = "; ".join(
        f"{s.corpus.corpus}: {s.corpus.lines:,} lines, {s.corpus.events:,} events, "
        f"{s.corpus.nbytes / MB:,.1f} MB"
        for s in summaries
    )
    pages = summaries[0].pages if summaries else 0
    return "\n".join(
        [
            f"LogCaster ingest with {pages} dashboards open on the live tail against none: "
            f"{connections} TCP connections, median of {runs} runs",
            *aligned_table(rows, left=1),
            f"corpora: {sizes}.",
            "events/s: the corpus' events over the seconds from the first byte sent to the "
            "STATS reply showing every event delivered (bench/ingest's rule). target: with "
            f"the pages at >={TARGET_RATIO:.2f}x the rate with none. server CPU s: the server "
            "process' user+system seconds over the same span; browser CPU s: Chromium's "
            "processes and Playwright's driver, same span (an idle browser with no page in "
            "the 0 row). skipped/page: the server's STATS TailSkipped (events a page's "
            "stream fell behind on and was told it skipped) over the pages; rows/page: the "
            "items a page's live list holds at the end (events and skipped rows; live.js "
            "keeps at most 20,000); skipped rows drawn: those in the DOM, which holds only "
            "the rows on screen.",
            f"The pages and the server share this machine's {os.cpu_count()} CPUs: the "
            "browsers' CPU competes with the server's, which is part of what open dashboards "
            "cost on one machine; the server's CPU seconds show its own cost apart.",
        ]
    )


def result_doc(summaries: Sequence[Summary], settings: dict[str, object]) -> dict[str, object]:
    def rounded(x: float | None, digits: int | None = None) -> float | int | None:
        return None if x is None else round(x, digits)

    results = []
    for s in summaries:
        c = s.corpus
        results.append(
            {
                "corpus": {"name": c.corpus, "lines": c.lines, "events": c.events,
                           "bytes": c.nbytes, "seed": c.seed},
                "pages": s.pages,
                "events_per_s": {str(p): rounded(s.events_per_s(p)) for p in (0, s.pages)},
                "ratio": rounded(s.ratio, 3),
                "target_met": None if s.ratio is None else s.ratio >= TARGET_RATIO,
                "server_cpu_s": {str(p): rounded(s.cpu_s(p), 3) for p in (0, s.pages)},
                "browser_cpu_s": {str(p): rounded(s.browser_cpu_s(p), 3) for p in (0, s.pages)},
                "skipped_per_page": rounded(s.per_page(s.pages, "skipped")),
                "runs": {str(p): [asdict(r) for r in rs] for p, rs in s.runs.items()},
            }
        )  # fmt: skip
    return {
        "bench": "dashboard",
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git": git_rev(),
        "settings": settings,
        "target_ratio": TARGET_RATIO,
        "host": host_info(),
        "results": results,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    exit_on_sigterm()
    server_cmd = [args.server]
    if not Path(args.server).exists():
        log(f"error: no logcaster command at {args.server} (run `make install`)")
        return 2
    summaries: list[Summary] = []
    dashboards: Dashboards | None = None
    try:
        dashboards = Dashboards(args.chromium)
        for name in args.corpus:
            with corpus_for(args.lines, args.seed, args.keep_corpus, name) as corpus:
                summaries.append(_bench_corpus(args, server_cmd, corpus, dashboards))
    except BenchError as exc:
        log(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        if dashboards is not None:
            dashboards.close()
        CHILDREN.kill_all()
    out = sys.stderr if args.json else sys.stdout
    print(render_table(summaries, args.connections, args.runs), file=out, flush=True)
    settings = {
        "lines": args.lines,
        "runs": args.runs,
        "pages": args.pages,
        "connections": args.connections,
        "chromium": args.chromium,
        "server": server_cmd,
    }
    doc = result_doc(summaries, settings)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"dashboard-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    log(f"results written to {path}")
    print(json.dumps(doc, separators=(",", ":")), flush=True)
    return 0


def _bench_corpus(
    args: argparse.Namespace,
    server_cmd: Sequence[str],
    corpus: _corpus.CorpusInfo,
    dashboards: Dashboards,
) -> Summary:
    data = memoryview(corpus.path.read_bytes())
    parts = _corpus.split(data, corpus.split_points, args.connections)
    timeout_s = max(120.0, corpus.lines / 20_000)
    summary = Summary(corpus, args.pages)
    for i in range(args.runs):
        msg = f"[{corpus.corpus}, run {i + 1}/{args.runs}]"
        for pages in (0, args.pages):
            r = run_dashboard(server_cmd, corpus, parts, timeout_s, dashboards, pages)
            summary.runs.setdefault(pages, []).append(r)
            msg += f" {pages} pages: {r.events_per_s:,.0f} ev/s, server CPU {r.cpu_s or 0:.2f} s"
            if pages:
                msg += f", TailSkipped {r.tail_skipped if r.tail_skipped is not None else '-'}"
            for w in r.warnings:
                log(f"warning ({corpus.corpus}, {pages} pages): {w}")
            msg += ";"
        log(msg.rstrip(";"))
    return summary


if __name__ == "__main__":
    raise SystemExit(main())
