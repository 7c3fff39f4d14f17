"""bench/http's report: medians, the HTTP/TCP ratios, the fan-out table, the JSON.

`CorpusSummary` holds one corpus' runs: TCP through bench/ingest's machinery
(`RunResult`) and HTTP per body kind (`HttpRun`); `FanoutSummary` the runs
per live-tail subscriber count. Events/s is the corpus' event count over the
run's seconds on both transports, so the ratio is also the lines/s ratio.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import _corpus
from _common import MB, RunResult, aligned_table, fmt_1, fmt_2, fmt_int, host_info
from _http_run import HttpRun
from _ingest_report import git_rev

TARGET_RATIO = 0.5  # NDJSON over HTTP against TCP lines, events/s
# The shippers' protocols against native NDJSON over HTTP, events/s (issue 19).
PROTOCOLS = ("otlp", "loki", "esbulk")


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _rss(values: Sequence[int | None]) -> str:
    known = [v for v in values if v is not None]
    return "-" if not known else f"{statistics.median(known) / MB:,.1f} MB"


@dataclass
class CorpusSummary:
    corpus: _corpus.CorpusInfo
    tcp: list[RunResult] = field(default_factory=list)
    http: dict[str, list[HttpRun]] = field(default_factory=dict)  # body kind -> runs

    @property
    def tcp_events_per_s(self) -> float | None:
        return _median([self.corpus.events / r.seconds for r in self.tcp])

    def events_per_s(self, kind: str) -> float | None:
        return _median([r.events_per_s for r in self.http.get(kind, [])])

    def ratio(self, kind: str) -> float | None:
        ours, tcp = self.events_per_s(kind), self.tcp_events_per_s
        return ours / tcp if ours is not None and tcp else None

    def ndjson_ratio(self, kind: str) -> float | None:
        """A shipper's protocol against native NDJSON over HTTP, events/s."""
        ours, native = self.events_per_s(kind), self.events_per_s("ndjson")
        return ours / native if ours is not None and native else None

    @property
    def tcp_cpu_s(self) -> float | None:
        return _median([r.cpu_s for r in self.tcp if r.cpu_s is not None])

    def cpu_s(self, kind: str) -> float | None:
        return _median([r.cpu_s for r in self.http.get(kind, []) if r.cpu_s is not None])

    def cpu_ratio(self, kind: str) -> float | None:
        """TCP's server CPU seconds over HTTP's: the ratio of events per CPU second."""
        ours, tcp = self.cpu_s(kind), self.tcp_cpu_s
        return tcp / ours if ours and tcp is not None else None


@dataclass
class FanoutSummary:
    corpus: _corpus.CorpusInfo
    kind: str
    runs: dict[int, list[HttpRun]] = field(default_factory=dict)  # subscribers -> runs

    def events_per_s(self, subscribers: int) -> float | None:
        return _median([r.events_per_s for r in self.runs.get(subscribers, [])])

    def per_stream(self, subscribers: int, key: str) -> float | None:
        """The median over runs of the mean over streams of `key` (events, skipped...)."""
        means = []
        for r in self.runs.get(subscribers, []):
            values = r.tail.get(key)
            if isinstance(values, list) and values:
                means.append(sum(values) / len(values))
        return _median(means)


def _verdict(ratio: float | None) -> str:
    if ratio is None:
        return "-"
    return f">={TARGET_RATIO:g} {'PASS' if ratio >= TARGET_RATIO else 'FAIL'}"


def _target(s: CorpusSummary, kind: str) -> str:
    """NDJSON's verdict against TCP; a shipper's protocol's against NDJSON."""
    if kind == "ndjson":
        return _verdict(s.ratio(kind))
    if kind in PROTOCOLS:
        ratio = s.ndjson_ratio(kind)
        return "-" if ratio is None else f"{ratio:.2f}x ndjson " + _verdict(ratio).split()[-1]
    return ""


def render_table(summaries: Sequence[CorpusSummary], clients: int, batch: int, runs: int) -> str:
    header = ("corpus", "transport", "events/s", "lines/s", "MB/s", "peak RSS", "vs TCP")
    rows: list[tuple[str, ...]] = [(*header, "target", "server CPU s", "CPU vs TCP")]
    for s in summaries:
        name = s.corpus.corpus
        if s.tcp:
            rows.append(
                (
                    name,
                    "tcp lines",
                    fmt_int(s.tcp_events_per_s),
                    fmt_int(_median([r.lines_per_s for r in s.tcp])),
                    fmt_1(_median([r.mb_per_s for r in s.tcp])),
                    _rss([r.peak_rss_bytes for r in s.tcp]),
                    "1.00",
                    "",
                    fmt_2(s.tcp_cpu_s),
                    "1.00",
                )
            )
            name = ""
        for kind, http_runs in s.http.items():
            ratio = s.ratio(kind)
            rows.append(
                (
                    name,
                    f"http {kind}",
                    fmt_int(s.events_per_s(kind)),
                    fmt_int(_median([r.lines_per_s for r in http_runs])),
                    fmt_1(_median([r.body_mb_per_s for r in http_runs])),
                    _rss([r.peak_rss_bytes for r in http_runs]),
                    fmt_2(ratio),
                    _target(s, kind),
                    fmt_2(s.cpu_s(kind)),
                    fmt_2(s.cpu_ratio(kind)),
                )
            )
            name = ""
    sizes = "; ".join(
        f"{s.corpus.corpus}: {s.corpus.lines:,} lines, {s.corpus.events:,} events, "
        f"{s.corpus.nbytes / MB:,.1f} MB"
        for s in summaries
    )
    lines = [
        f"LogCaster HTTP ingest against TCP lines: {clients} HTTP clients and {clients} TCP "
        f"connections, {batch:,} events per POST, median of {runs} runs",
        *aligned_table(rows, left=2),
        f"corpora: {sizes}.",
        "events/s and lines/s: the corpus' events and lines over the seconds from the first "
        "byte sent to the STATS reply showing every event delivered. MB/s: the bytes sent "
        "(NDJSON bodies are larger than the lines), MB = 10^6 bytes. target: NDJSON at "
        f">={TARGET_RATIO:g}x TCP; otlp, loki and esbulk at >={TARGET_RATIO:g}x NDJSON. "
        "server CPU s: the server process' user+system seconds "
        "over the same span; CPU vs TCP: TCP's over HTTP's, the ratio of events per server "
        "CPU second (the senders' own CPU, which shares the machine, left out).",
    ]
    return "\n".join(lines)


def render_fanout(f: FanoutSummary, clients: int, runs: int) -> str:
    rows: list[tuple[str, ...]] = [
        ("subscribers", "events/s", "vs 0", "events/stream", "skipped/stream", "notices/stream")
    ]
    base = f.events_per_s(0)
    for n in sorted(f.runs):
        rate = f.events_per_s(n)
        rows.append(
            (
                str(n),
                fmt_int(rate),
                fmt_2(rate / base) if rate is not None and base else "-",
                fmt_int(f.per_stream(n, "events")) if n else "-",
                fmt_int(f.per_stream(n, "skipped")) if n else "-",
                fmt_1(f.per_stream(n, "notices")) if n else "-",
            )
        )
    return "\n".join(
        [
            f"SSE fan-out: HTTP {f.kind} ingest of the {f.corpus.corpus} corpus "
            f"({f.corpus.events:,} events) with N live-tail streams (GET /api/v1/tail, no "
            f"filter, read as fast as they come in one process), {clients} clients, median "
            f"of {runs} runs",
            *aligned_table(rows),
            "per stream: the mean over streams of the events received, the events the "
            "server's `skipped` notices counted, and the notices; received + skipped = every "
            "event when nothing was lost.",
        ]
    )


def result_doc(
    summaries: Sequence[CorpusSummary],
    fanout: FanoutSummary | None,
    settings: dict[str, object],
) -> dict[str, object]:
    def rounded(x: float | None, digits: int | None = None) -> float | int | None:
        return None if x is None else round(x, digits)

    def run_doc(r: object) -> dict[str, object]:
        doc = asdict(r)  # type: ignore[call-overload]
        return {k: v for k, v in doc.items() if v is not None and v != {} and k != "stats"}

    results = []
    for s in summaries:
        c = s.corpus
        results.append(
            {
                "corpus": {"name": c.corpus, "lines": c.lines, "events": c.events,
                           "bytes": c.nbytes, "seed": c.seed},
                "tcp_events_per_s": rounded(s.tcp_events_per_s),
                "http_events_per_s": {k: rounded(s.events_per_s(k)) for k in s.http},
                "ratio_to_tcp": {k: rounded(s.ratio(k), 3) for k in s.http},
                "ratio_to_ndjson": {
                    k: rounded(s.ndjson_ratio(k), 3) for k in s.http if k in PROTOCOLS
                },
                "tcp_cpu_s": rounded(s.tcp_cpu_s, 3),
                "http_cpu_s": {k: rounded(s.cpu_s(k), 3) for k in s.http},
                "cpu_ratio_to_tcp": {k: rounded(s.cpu_ratio(k), 3) for k in s.http},
                "target_met": None if "ndjson" not in s.http else
                (s.ratio("ndjson") or 0.0) >= TARGET_RATIO,
                "tcp_runs": [run_doc(r) for r in s.tcp],
                "http_runs": {k: [run_doc(r) for r in runs] for k, runs in s.http.items()},
            }
        )  # fmt: skip
    doc: dict[str, object] = {
        "bench": "http",
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git": git_rev(),
        "settings": settings,
        "target_ratio": TARGET_RATIO,
        "host": host_info(),
        "results": results,
    }
    if fanout is not None:
        doc["fanout"] = {
            "corpus": fanout.corpus.corpus,
            "body": fanout.kind,
            "events_per_s": {str(n): rounded(fanout.events_per_s(n)) for n in fanout.runs},
            "runs": {str(n): [run_doc(r) for r in rs] for n, rs in fanout.runs.items()},
        }
    return doc
