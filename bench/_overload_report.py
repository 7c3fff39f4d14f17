"""The overload benchmark's report: medians and check results per policy, the table.

`Summary` holds one policy's runs (bench/_overload_run.py); `render_table`
prints one column per policy, one row per figure and check, under a line that
states the scenario.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from _common import fmt_1, fmt_2, fmt_int
from _overload_run import PolicyRun
from _overload_scenario import (
    BATCH_EVENTS,
    BUFFER_EVENTS,
    CONNECTIONS,
    MAX_IN_FLIGHT,
    QUEUE_EVENTS,
    Corpus,
)


@dataclass
class Summary:
    policy: str
    runs: list[PolicyRun]

    def median(self, key: str) -> float | None:
        values = [r.values[key] for r in self.runs if key in r.values]
        return statistics.median(values) if values else None

    def check(self, key: str) -> str:
        results = [r.checks[key] for r in self.runs if key in r.checks]
        if not results:
            return "-"
        ok = sum(results)
        word = "ok" if ok == len(results) else "FAIL"
        return word if len(results) == 1 else f"{word} {ok}/{len(results)}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def render_table(summaries: Sequence[Summary], args: argparse.Namespace, corpus: Corpus) -> str:
    capacity = BATCH_EVENTS * 1000.0 / args.delay_ms
    reasons = sorted(
        {k for s in summaries for r in s.runs for k in r.values if k.startswith("Dropped")}
        - {"Dropped"}
    )
    sums = summaries
    rows: list[tuple[str, ...]] = [("", *(s.policy for s in sums))]

    def row(label: str, key: str, fmt: Any = fmt_int) -> None:
        rows.append((label, *(fmt(s.median(key)) for s in summaries)))

    row("sender elapsed (s)", "sent_s", fmt_2)
    row("  read by the server by then", "read_when_sent")
    row("settled (s, from first byte)", "settled_s", fmt_2)
    row("received (Total)", "Total")
    row("delivered", "Delivered")
    row("forwarded", "Forwarded")
    row("received by the slow sink", "sink_events")
    row("  duplicates at the sink", "sink_duplicates")
    row("dropped", "Dropped")
    for reason in reasons:
        row(f"  {reason}", reason)
    row("sampled", "Sampled")
    rows.append(
        (
            "ERROR sent / at the sink",
            *(
                f"{fmt_int(s.median('errors_sent'))} / {fmt_int(s.median('sink_errors'))}"
                for s in sums
            ),
        )
    )
    row("first 10% of lines at the sink", "first_10pct", _pct)
    row("last 10% of lines at the sink", "last_10pct", _pct)
    row("peak QueueEvents", "QueuePeakEvents")
    row("peak ForwardBuffered", "ForwardBufferedPeak")
    row("high watermark crossings", "HighWatermark")
    row("RSS at start (MB)", "rss_start_mb", fmt_1)
    row("RSS max, sampled (MB)", "rss_max_mb", fmt_1)
    row("RSS peak, VmHWM (MB)", "rss_hwm_mb", fmt_1)
    row("forwarded rate (events/s)", "forward_rate")
    row(f"  / configured capacity {capacity:,.0f}/s", "rate_ratio", fmt_2)
    row("POSTs to the sink", "posts")
    row(f"  events per POST, mean (batch_events {BATCH_EVENTS})", "post_mean")
    row("  events per POST, max", "post_max")
    row("  rate / (mean POST / delay)", "rate_ratio_posts", fmt_2)
    row("SIGTERM to exit (s)", "stop_s", fmt_2)
    for label, key in (
        ("check: Total = Deliv+Drop+Samp+Queue", "accounting"),
        ("check: Forwarded = sink received", "forwarded"),
        ("check: every ERROR kept (sample)", "errors_kept"),
        ("check: settled before the timeout", "settled"),
    ):
        rows.append((label, *(s.check(key) for s in summaries)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(r)
        ).rstrip()
        for r in rows
    ]
    runs = summaries[0].runs if summaries else []
    head = (
        f"overload: {corpus.lines:,} lines ({corpus.errors:,} ERROR) over {CONNECTIONS} "
        f"connections; slow sink {args.delay_ms:g} ms per POST of {BATCH_EVENTS} events = "
        f"{capacity:,.0f} events/s (max_in_flight {MAX_IN_FLIGHT}); queue.max_events "
        f"{QUEUE_EVENTS:,}, buffer_events {BUFFER_EVENTS:,}, no spool; "
        f"{'median of ' + str(len(runs)) + ' runs' if len(runs) > 1 else '1 run'}"
    )
    return "\n".join([head, "", *lines])
