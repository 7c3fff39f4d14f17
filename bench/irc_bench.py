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

The parts: bench/_irc_run.py (the clients and the runs); the corpus and the
ingest machinery are bench/ingest's (bench/_corpus.py, bench/_ingest_run.py).
This module holds the command line, the loops and the report.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import platform
import signal
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import TypeVar

import _corpus
from _common import (
    CHILDREN,
    MB,
    OUT_DIR,
    BenchError,
    add_run_options,
    aligned_table,
    fmt_1,
    fmt_2,
    fmt_int,
    log,
    parse_count,
    positive_int,
)
from _ingest_report import git_rev
from _irc_run import CHANNEL, MaxRun, PacedRun, paced_payload, run_max, run_paced
from ingest_bench import corpus_for

TARGET_RATIO = 0.90  # events/s with IRC on against off: at most 10% slower
KEPT_UP_LAG_S = 1.0  # paced: every event delivered within this of the last byte ...
KEPT_UP_SEND = 1.05  # ... and the sender never held up (its seconds within 5% of plan)
KB = 1_000

# The cases: IRC off; on with no client; on with C clients reading; K of them stalled.
OFF, IDLE, ON, STALL = "off", "idle", "on", "stall"
MAX_CASES = (OFF, IDLE, ON)
T = TypeVar("T")


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _names(allowed: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        names = [n.strip() for n in text.split(",") if n.strip()]
        bad = [n for n in names if n not in allowed]
        if not names or bad:
            raise argparse.ArgumentTypeError(f"expected some of {', '.join(allowed)}, not {text!r}")
        return list(dict.fromkeys(names))

    return parse


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


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
        "--corpus", type=_names(sorted(_corpus.CORPORA)), default=["default"], metavar="LIST",
        help=f'corpora, comma-separated, of {", ".join(sorted(_corpus.CORPORA))} '
        '(default "default")',
    )  # fmt: skip
    parser.add_argument(
        "--clients", type=positive_int, default=50,
        help=f"IRC clients in {CHANNEL} with IRC on (default 50)",
    )  # fmt: skip
    parser.add_argument(
        "--stalled", type=_non_negative, default=10,
        help="of those, the clients that stop reading in the stalled paced case "
        "(default 10; 0: no stalled case)",
    )  # fmt: skip
    parser.add_argument(
        "--rate", type=_positive_float, default=10_000.0,
        help="paced: events a second (default 10000)",
    )  # fmt: skip
    parser.add_argument(
        "--seconds", type=_positive_float, default=10.0,
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


def _median(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


@dataclass
class Summary:
    corpus: _corpus.CorpusInfo
    clients: int
    stalled: int
    max_runs: dict[str, list[MaxRun]] = field(default_factory=dict)  # MAX_CASES -> runs
    paced_runs: dict[str, list[PacedRun]] = field(default_factory=dict)  # OFF, ON, STALL

    def max_med(self, case: str, get: Callable[[MaxRun], float | None]) -> float | None:
        return _median([get(r) for r in self.max_runs.get(case, [])])

    def paced_med(self, case: str, get: Callable[[PacedRun], float | None]) -> float | None:
        return _median([get(r) for r in self.paced_runs.get(case, [])])

    @property
    def ratio(self) -> float | None:
        on = self.max_med(ON, lambda r: r.events_per_s)
        off = self.max_med(OFF, lambda r: r.events_per_s)
        return on / off if on is not None and off else None

    @property
    def paced_cases(self) -> list[str]:
        return [c for c in (OFF, ON, STALL) if c in self.paced_runs]


def kept_up(r: PacedRun) -> bool:
    return r.lag_s <= KEPT_UP_LAG_S and r.send_s <= r.seconds * KEPT_UP_SEND


def _verdict(ratio: float | None) -> str:
    if ratio is None:
        return "-"
    return f">={TARGET_RATIO:.2f} {'PASS' if ratio >= TARGET_RATIO else 'FAIL'}"


def _mb(x: float | None) -> str:
    return "-" if x is None else f"{x / MB:,.1f}"


def _skipped(r: MaxRun | PacedRun, reason: str) -> int | None:
    return None if r.irc is None else r.irc.skipped_by.get(reason, 0)


def _sent(r: MaxRun) -> int | None:
    return None if r.irc is None else r.irc.lines_sent


def _all_skipped(r: MaxRun) -> int | None:
    return None if r.irc is None else r.irc.skipped


def _per_reader(r: PacedRun) -> float:
    return r.lines_read / max(1, r.clients - r.stalled)


def _cut(r: PacedRun) -> int | None:
    return None if r.irc is None else sum(r.irc.disconnects.values())


def _skipped_cell(s: Summary, case: str) -> str:
    """IrcSkipped by reason (medians): rate / slow / client."""
    return " / ".join(
        fmt_int(s.max_med(case, functools.partial(_skipped, reason=why)))
        for why in ("rate", "slow", "client")
    )


def _case_label(case: str, s: Summary) -> str:
    if case == OFF:
        return "off"
    if case == IDLE:
        return "on, no client"
    if case == ON:
        return f"on, {s.clients} reading"
    return f"on, {s.clients - s.stalled} reading + {s.stalled} stalled"


def render_max_table(summaries: Sequence[Summary], args: argparse.Namespace) -> str:
    rows: list[tuple[str, ...]] = [
        ("corpus", "IRC", "events/s", "vs off", "target", "server CPU s",
         "lines read/client", "IrcLinesSent", "IrcSkipped", "rate / slow / client"),
    ]  # fmt: skip
    for s in summaries:
        name = s.corpus.corpus
        base = s.max_med(OFF, lambda r: r.events_per_s)
        for case in MAX_CASES:
            rate = s.max_med(case, lambda r: r.events_per_s)
            on = case != OFF
            reading = case == ON
            rows.append(
                (
                    name,
                    _case_label(case, s),
                    fmt_int(rate),
                    fmt_2(rate / base) if rate is not None and base else "-",
                    _verdict(s.ratio) if reading else "",
                    fmt_2(s.max_med(case, lambda r: r.cpu_s)),
                    fmt_int(s.max_med(case, lambda r: r.lines_read / r.clients))
                    if reading
                    else "-",
                    fmt_int(s.max_med(case, lambda r: _sent(r))) if on else "-",
                    fmt_int(s.max_med(case, lambda r: _all_skipped(r))) if on else "-",
                    _skipped_cell(s, case) if on else "-",
                )
            )
            name = ""
    sizes = "; ".join(
        f"{s.corpus.corpus}: {s.corpus.lines:,} lines, {s.corpus.events:,} events, "
        f"{s.corpus.nbytes / MB:,.1f} MB"
        for s in summaries
    )
    return "\n".join(
        [
            f"LogCaster ingest at full speed with IRC on ({args.clients} clients in {CHANNEL}) "
            f"against IRC off: {args.connections} TCP connections, median of {args.runs} runs",
            *aligned_table(rows, left=2),
            f"corpora: {sizes}.",
            "events/s: the corpus' events over the seconds from the first byte sent to the "
            "STATS reply showing every event delivered (bench/ingest's rule). target: with "
            f"IRC on at >={TARGET_RATIO:.2f}x the rate with it off. server CPU s: the server "
            "process' user+system seconds over the same span. lines read/client: lines a "
            "client read over the same span (the channel streams a capped number of events "
            "a second). IrcLinesSent, IrcSkipped: STATS at the end (the server's whole life; "
            "IrcSkipped counts events), and by reason from GET /metrics: rate (over the "
            "channel's rate cap), slow (the channel's stream fell behind the broker), client "
            "(a client's queue full).",
        ]
    )


def render_paced_table(summaries: Sequence[Summary], args: argparse.Namespace) -> str:
    rows: list[tuple[str, ...]] = [
        ("corpus", "IRC", "ev/s sent", "kept up", "delivered at last byte", "lag s",
         "queue peak", "server CPU %", "RSS before MB", "RSS max MB", "VmHWM MB",
         "lines/reading client", "skipped (client)", "unread KB", "cut"),
    ]  # fmt: skip
    for s in summaries:
        name = s.corpus.corpus
        for case in s.paced_cases:
            runs = s.paced_runs[case]
            irc = case != OFF
            kept = sum(kept_up(r) for r in runs)
            rows.append(
                (
                    name,
                    _case_label(case, s),
                    fmt_int(s.paced_med(case, lambda r: r.sent_events_per_s)),
                    f"{kept}/{len(runs)}",
                    fmt_1(s.paced_med(case, lambda r: 100.0 * r.delivered_at_end / r.events)) + "%",
                    fmt_2(s.paced_med(case, lambda r: r.lag_s)),
                    fmt_int(s.paced_med(case, lambda r: r.queue_peak)),
                    fmt_1(s.paced_med(case, lambda r: r.cpu_pct)),
                    _mb(s.paced_med(case, lambda r: r.rss_start)),
                    _mb(s.paced_med(case, lambda r: r.rss_max)),
                    _mb(s.paced_med(case, lambda r: r.peak_rss_bytes)),
                    fmt_int(s.paced_med(case, _per_reader)) if irc else "-",
                    fmt_int(s.paced_med(case, lambda r: _skipped(r, "client"))) if irc else "-",
                    fmt_1(s.paced_med(case, lambda r: r.unread_bytes / KB))
                    if case == STALL
                    else "-",
                    fmt_int(s.paced_med(case, _cut)) if irc else "-",
                )
            )
            name = ""
    return "\n".join(
        [
            f"LogCaster at {args.rate:,.0f} events/s for {args.seconds:g} s (one TCP "
            f"connection), IRC off / on with {args.clients} clients in {CHANNEL} / on with "
            f"{args.stalled} of them stalled: median of {args.runs} runs",
            *aligned_table(rows, left=2),
            "ev/s sent: the events the server counted over the seconds from the first byte "
            "to the last. kept up: runs whose sender was never held up (its seconds within "
            f"{100 * (KEPT_UP_SEND - 1):.0f}% of plan) and whose events were all delivered "
            f"within {KEPT_UP_LAG_S:g} s of the last byte. delivered at last byte: STATS "
            "Delivered then, of the final count; lag s: from the last byte to the STATS "
            "reply showing every event delivered; queue peak: STATS QueuePeakEvents. server "
            "CPU %: the server's CPU seconds over the wall seconds, first byte to every "
            "event delivered. RSS before: VmRSS just before the first byte (the clients "
            "joined); RSS max: the most VmRSS sampled every 0.2 s from then to the end; "
            "VmHWM: the server's peak over its whole life. lines/reading client: lines a "
            "reading client read over the run. skipped (client): log lines the server "
            "skipped for a client whose queue was full (irc.sendq_lines; IrcSkipped "
            "reason=client). unread KB: bytes the stalled clients had left unread in their "
            "sockets at the end, summed. cut: clients the server disconnected "
            "(irc_disconnects, any reason).",
            f"The clients and the server share this machine's {os.cpu_count()} CPUs.",
        ]
    )


def result_doc(summaries: Sequence[Summary], settings: dict[str, object]) -> dict[str, object]:
    def rounded(x: float | None, digits: int | None = None) -> float | int | None:
        return None if x is None else round(x, digits)

    results = []
    for s in summaries:
        c = s.corpus
        paced: dict[str, object] = {}
        for case in s.paced_cases:
            paced[case] = {
                "sent_events_per_s": rounded(s.paced_med(case, lambda r: r.sent_events_per_s)),
                "kept_up": sum(kept_up(r) for r in s.paced_runs[case]),
                "lag_s": rounded(s.paced_med(case, lambda r: r.lag_s), 3),
                "cpu_pct": rounded(s.paced_med(case, lambda r: r.cpu_pct), 1),
                "rss_start_bytes": rounded(s.paced_med(case, lambda r: r.rss_start)),
                "rss_max_bytes": rounded(s.paced_med(case, lambda r: r.rss_max)),
                "vm_hwm_bytes": rounded(s.paced_med(case, lambda r: r.peak_rss_bytes)),
                "skipped_client": rounded(s.paced_med(case, lambda r: _skipped(r, "client"))),
                "disconnects": rounded(s.paced_med(case, _cut)),
            }
        results.append(
            {
                "corpus": {"name": c.corpus, "lines": c.lines, "events": c.events,
                           "bytes": c.nbytes, "seed": c.seed},
                "clients": s.clients,
                "stalled": s.stalled,
                "max_rate": {
                    "events_per_s": {
                        case: rounded(s.max_med(case, lambda r: r.events_per_s))
                        for case in MAX_CASES
                    },
                    "ratio": rounded(s.ratio, 3),
                    "target_met": None if s.ratio is None else s.ratio >= TARGET_RATIO,
                    "server_cpu_s": {
                        case: rounded(s.max_med(case, lambda r: r.cpu_s), 3) for case in MAX_CASES
                    },
                },
                "paced": paced,
                "runs": {
                    "max_rate": {k: [asdict(r) for r in rs] for k, rs in s.max_runs.items()},
                    "paced": {k: [asdict(r) for r in rs] for k, rs in s.paced_runs.items()},
                },
            }
        )  # fmt: skip
    return {
        "bench": "irc",
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git": git_rev(),
        "settings": settings,
        "target_ratio": TARGET_RATIO,
        "host": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "results": results,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.stalled >= args.clients:
        log(f"error: --stalled {args.stalled} leaves no reading client of {args.clients}")
        return 2
    signal.signal(signal.SIGTERM, _on_sigterm)
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
    print(render_max_table(summaries, args), file=out)
    print(file=out)
    print(render_paced_table(summaries, args), file=out, flush=True)
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
    doc = result_doc(summaries, settings)
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
                f"CPU {p.cpu_pct or 0:.0f}%, RSS max {_mb(p.rss_max)} MB"
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
