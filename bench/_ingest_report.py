"""The ingest benchmark's report: medians per connection count, the table, the JSON.

`Summary` holds one connection count's runs (LogCaster, socat, rsyslog) and
their medians and ratios; `render_table` prints them next to the targets and
`result_doc` is the JSON document bench/ingest prints and writes to bench/out.
"""

from __future__ import annotations

import datetime as dt
import statistics
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import _corpus
from _common import MB, REPO, RunResult, fmt_1, fmt_2, fmt_int, host_info, reference_dir

REDACT_HEADING = "redaction on / plain (median lines/s, each run alternating with a plain one):"
TARGET_LINES_PER_S = 400_000  # on one connection
TARGET_RSS_BYTES = 200_000_000  # peak RSS ...
TARGET_RSS_LINES = 5_000_000  # ... when ingesting this many lines


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _median_rss(runs: Sequence[RunResult]) -> int | None:
    values = [r.peak_rss_bytes for r in runs if r.peak_rss_bytes is not None]
    return int(statistics.median(values)) if values else None


@dataclass
class Summary:
    connections: int
    runs: list[RunResult]
    raw_runs: list[RunResult]
    rsyslog_runs: list[RunResult]
    tls_runs: list[RunResult] = field(default_factory=list)  # --tls: the same over TLS

    @property
    def tls_lines_per_s(self) -> float | None:
        return statistics.median(r.lines_per_s for r in self.tls_runs) if self.tls_runs else None

    @property
    def tls_ratio(self) -> float | None:
        """TLS lines/s over plain lines/s (medians)."""
        tls = self.tls_lines_per_s
        return None if tls is None else tls / self.lines_per_s

    redact_runs: list[RunResult] = field(default_factory=list)  # --redact

    @property
    def redact_lines_per_s(self) -> float | None:
        return _median([r.lines_per_s for r in self.redact_runs])

    @property
    def redact_ratio(self) -> float | None:
        """Redaction on / plain, of the medians: 0.80 is 20% slower."""
        red = self.redact_lines_per_s
        return red / self.lines_per_s if red is not None else None

    @property
    def redact_cpu_ratio(self) -> float | None:
        """The server's CPU seconds over the timed part, redaction on / plain (medians):
        steadier than lines/s on a machine shared with other work."""
        plain = _median([r.cpu_s for r in self.runs if r.cpu_s is not None])
        red = _median([r.cpu_s for r in self.redact_runs if r.cpu_s is not None])
        return red / plain if red is not None and plain else None

    @property
    def redacted(self) -> list[int]:
        """STATS Redacted per redaction run."""
        return [int(float(r.stats.get("Redacted", "0"))) for r in self.redact_runs]

    @property
    def lines_per_s(self) -> float:
        return statistics.median(r.lines_per_s for r in self.runs)

    @property
    def mb_per_s(self) -> float:
        return statistics.median(r.mb_per_s for r in self.runs)

    @property
    def peak_rss_bytes(self) -> int | None:
        return _median_rss(self.runs)

    @property
    def events(self) -> list[int]:
        """The server's final Total per run (the corpus' event count when it groups
        every multi-line event as the corpus expects)."""
        return [r.total for r in self.runs if r.total is not None]

    @property
    def raw_lines_per_s(self) -> float | None:
        return _median([r.lines_per_s for r in self.raw_runs])

    @property
    def raw_mb_per_s(self) -> float | None:
        return _median([r.mb_per_s for r in self.raw_runs])

    @property
    def ratio(self) -> float | None:
        raw = self.raw_lines_per_s
        return self.lines_per_s / raw if raw else None

    @property
    def rsyslog_lines_per_s(self) -> float | None:
        return _median([r.lines_per_s for r in self.rsyslog_runs])

    @property
    def rsyslog_mb_per_s(self) -> float | None:
        return _median([r.mb_per_s for r in self.rsyslog_runs])

    @property
    def rsyslog_peak_rss_bytes(self) -> int | None:
        return _median_rss(self.rsyslog_runs)

    @property
    def rsyslog_ratio(self) -> float | None:
        ref = self.rsyslog_lines_per_s
        return self.lines_per_s / ref if ref else None


def _fmt_rss(x: int | None) -> str:
    return "-" if x is None else f"{x / MB:,.1f} MB"


def throughput_verdict(s: Summary) -> str:
    if s.connections != 1:
        return "-"
    ok = s.lines_per_s >= TARGET_LINES_PER_S
    return f">={TARGET_LINES_PER_S // 1000}k {'PASS' if ok else 'FAIL'}"


def rss_verdict(s: Summary, lines: int) -> str:
    rss = s.peak_rss_bytes
    if rss is None:
        return "-"
    limit = f"<={TARGET_RSS_BYTES // MB}MB"
    if lines < TARGET_RSS_LINES:
        return f"{limit} (at 5M)"
    return f"{limit} {'PASS' if rss <= TARGET_RSS_BYTES else 'FAIL'}"


def _fmt_events(events: Sequence[int]) -> str:
    if not events:
        return "-"
    low, high = min(events), max(events)
    return f"{low:,}" if low == high else f"{low:,}-{high:,}"


def render_table(summaries: Sequence[Summary], corpus: _corpus.CorpusInfo, runs: int) -> str:
    header = (
        "connections",
        "lines/s",
        "target",
        "MB/s",
        "peak RSS",
        "target",
        "events",
        "raw lines/s",
        "raw MB/s",
        "ours/raw",
        "rsyslog lines/s",
        "rsyslog MB/s",
        "rsyslog RSS",
        "ours/rsyslog",
    )
    rows = [header]
    for s in summaries:
        rss = s.peak_rss_bytes
        rows.append(
            (
                str(s.connections),
                fmt_int(s.lines_per_s),
                throughput_verdict(s),
                fmt_1(s.mb_per_s),
                _fmt_rss(rss),
                rss_verdict(s, corpus.lines),
                _fmt_events(s.events),
                fmt_int(s.raw_lines_per_s),
                fmt_1(s.raw_mb_per_s),
                fmt_2(s.ratio),
                fmt_int(s.rsyslog_lines_per_s),
                fmt_1(s.rsyslog_mb_per_s),
                _fmt_rss(s.rsyslog_peak_rss_bytes),
                fmt_2(s.rsyslog_ratio),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    name = "" if corpus.corpus == "default" else f" ({corpus.corpus} corpus)"
    lines = [
        f"LogCaster ingest{name}: {corpus.lines:,} lines, {corpus.nbytes / MB:,.1f} MB, "
        f"{corpus.events:,} events expected ({corpus.blocks:,} multi-line), median of {runs} runs",
    ]
    for i, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append(
        f"targets: >={TARGET_LINES_PER_S:,} lines/s on 1 connection; peak RSS (VmHWM) "
        f"<={TARGET_RSS_BYTES // MB} MB on {TARGET_RSS_LINES:,} lines. MB = 10^6 bytes. "
        f"raw = one socat per connection writing a preallocated file in "
        f"{reference_dir(corpus.nbytes)}."
    )
    lines.extend(
        f"TLS ({s.connections} conn): {fmt_int(s.tls_lines_per_s)} lines/s, "
        f"TLS/plain {fmt_2(s.tls_ratio)} (ingest listener and senders over TLS)"
        for s in summaries
        if s.tls_runs
    )
    if any(e != corpus.events for s in summaries for e in s.events):
        lines.append(
            f"events = the server's final STATS Total per run; the corpus holds "
            f"{corpus.events:,}: the server grouped its multi-line events differently."
        )
    if any(s.redact_runs for s in summaries):
        lines.append(REDACT_HEADING)
        for s in summaries:
            red, ratio = s.redact_lines_per_s, s.redact_ratio
            if red is None or ratio is None:
                continue
            lines.append(
                f"  {s.connections} conn: plain {fmt_int(s.lines_per_s)} lines/s, redaction on "
                f"{fmt_int(red)} lines/s, redacted/plain {ratio:.3f} ({(1 - ratio) * 100:.1f}% "
                f"slower; target at most 25%), server CPU s redacted/plain "
                f"{fmt_2(s.redact_cpu_ratio)}, STATS Redacted per run: {s.redacted}"
            )
    if any(s.rsyslog_runs for s in summaries):
        lines.append(
            f"rsyslog = a standalone rsyslogd, imtcp -> omfile (the raw message per line, "
            f"into {reference_dir(corpus.nbytes)}), timed until its file holds every line "
            f"sent; rsyslog RSS = its peak RSS (VmHWM)."
        )
    return "\n".join(lines)


def git_rev() -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def result_doc(
    summaries: Sequence[Summary],
    corpus: _corpus.CorpusInfo,
    runs: int,
    server_cmd: Sequence[str],
    reference: str | None,
    rsyslog_reference: str | None,
) -> dict[str, object]:
    def run_doc(r: RunResult) -> dict[str, object]:
        return {k: v for k, v in asdict(r).items() if v is not None and v != {}}

    def rounded(x: float | None, digits: int | None = None) -> float | int | None:
        return None if x is None else round(x, digits)

    results = []
    for s in summaries:
        rss = s.peak_rss_bytes
        results.append(
            {
                "connections": s.connections,
                "lines_per_s": round(s.lines_per_s),
                "mb_per_s": round(s.mb_per_s, 2),
                "peak_rss_bytes": rss,
                "peak_rss_mb": None if rss is None else round(rss / MB, 1),
                "raw_lines_per_s": rounded(s.raw_lines_per_s),
                "raw_mb_per_s": rounded(s.raw_mb_per_s, 2),
                "ratio": rounded(s.ratio, 3),
                "events": s.events,
                "rsyslog_lines_per_s": rounded(s.rsyslog_lines_per_s),
                "rsyslog_mb_per_s": rounded(s.rsyslog_mb_per_s, 2),
                "rsyslog_peak_rss_bytes": s.rsyslog_peak_rss_bytes,
                "rsyslog_peak_rss_mb": rounded(
                    None if s.rsyslog_peak_rss_bytes is None else s.rsyslog_peak_rss_bytes / MB, 1
                ),
                "rsyslog_ratio": rounded(s.rsyslog_ratio, 3),
                "tls_lines_per_s": rounded(s.tls_lines_per_s),
                "tls_ratio": rounded(s.tls_ratio, 3),
                "tls_runs": [run_doc(r) for r in s.tls_runs],
                "rsyslog_lines_written": [r.total for r in s.rsyslog_runs],
                "target_lines_per_s_met": (
                    s.lines_per_s >= TARGET_LINES_PER_S if s.connections == 1 else None
                ),
                "target_rss_met": (
                    rss <= TARGET_RSS_BYTES
                    if rss is not None and corpus.lines >= TARGET_RSS_LINES
                    else None
                ),
                "runs": [run_doc(r) for r in s.runs],
                "raw_runs": [run_doc(r) for r in s.raw_runs],
                "rsyslog_runs": [run_doc(r) for r in s.rsyslog_runs],
                "redact_lines_per_s": rounded(s.redact_lines_per_s),
                "redact_ratio": rounded(s.redact_ratio, 3),
                "redact_cpu_ratio": rounded(s.redact_cpu_ratio, 3),
                "redacted": s.redacted,
                "redact_runs": [run_doc(r) for r in s.redact_runs],
            }
        )
    return {
        "bench": "ingest",
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git": git_rev(),
        "corpus": {
            "name": corpus.corpus,
            "path": str(corpus.path),
            "lines": corpus.lines,
            "bytes": corpus.nbytes,
            "events": corpus.events,
            "blocks": corpus.blocks,
            "block_lines": corpus.block_lines,
            "seed": corpus.seed,
        },
        "runs": runs,
        "server": list(server_cmd),
        "reference": reference,
        "rsyslog_reference": rsyslog_reference,
        "targets": {
            "lines_per_s_1_connection": TARGET_LINES_PER_S,
            "peak_rss_bytes": TARGET_RSS_BYTES,
            "peak_rss_at_lines": TARGET_RSS_LINES,
        },
        "host": host_info(),
        "results": results,
    }
