"""bench/irc's report: the cases, their medians, the two tables, the JSON.

`Summary` holds one corpus' runs per case: the max-rate runs (`MaxRun`) with
IRC off, on with no client and on with the clients reading (`MAX_CASES`), and
the paced runs (`PacedRun`) with IRC off, on with the clients reading and on
with some of them stalled. `render_max_table` and `render_paced_table` print
the medians against the target (`TARGET_RATIO`, `kept_up`); `result_doc` is
the JSON, every run included.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import _corpus
from _common import MB, aligned_table, fmt_1, fmt_2, fmt_int, host_info
from _ingest_report import git_rev
from _irc_clients import CHANNEL
from _irc_run import MaxRun, PacedRun

TARGET_RATIO = 0.90  # events/s with IRC on against off: at most 10% slower
KEPT_UP_LAG_S = 1.0  # paced: every event delivered within this of the last byte ...
KEPT_UP_SEND = 1.05  # ... and the sender never held up (its seconds within 5% of plan)
KB = 1_000

# The cases: IRC off; on with no client; on with C clients reading; K of them stalled.
OFF, IDLE, ON, STALL = "off", "idle", "on", "stall"
MAX_CASES = (OFF, IDLE, ON)


def _median(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


@dataclass
class Summary:
    """One corpus' runs, by case."""

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


def fmt_mb(x: float | None) -> str:
    """Bytes as MB with one decimal; "-" for None."""
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
                    fmt_mb(s.paced_med(case, lambda r: r.rss_start)),
                    fmt_mb(s.paced_med(case, lambda r: r.rss_max)),
                    fmt_mb(s.paced_med(case, lambda r: r.peak_rss_bytes)),
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
        "host": host_info(),
        "results": results,
    }
