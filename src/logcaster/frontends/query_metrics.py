"""Queries by front end and outcome, and how long they took (SPEC §8).

Every front end that answers queries reports each request once, when it has
answered, through `QueryService.observe(frontend, outcome, seconds)`
(frontends/lineproto.py): the line protocol as `line`, the HTTP API as `http`.
`outcome_of(exc)` names the outcome of a request from the exception that
ended it (None: it was answered), so every front end classifies alike:

- `ok`: answered (a search, COUNT, STATS, HELP, CLEAR);
- `error`: the request did not parse, or the server failed;
- `busy`: refused, too many queries running (`query.max_concurrent` +
  `query.max_waiting`);
- `limit`: refused or cut by a cost limit (`query.max_scan`, the pattern and
  keyword bounds, `source=store` without a store);
- `timeout`: past `query.timeout`.

The front-end names and outcomes are fixed by code, never taken from a
request, so the label values stay bounded.
"""

from __future__ import annotations

from typing import Literal

from logcaster.exceptions import QueryBusy, QueryLimitError, QueryTimeout
from logcaster.metrics.histogram import Histogram
from logcaster.metrics.registry import Metric, Readings

Outcome = Literal["ok", "error", "busy", "limit", "timeout"]
OUTCOMES: tuple[Outcome, ...] = ("ok", "error", "busy", "limit", "timeout")

QUERIES = Metric(
    "queries",
    "counter",
    "Query requests answered, by front end (line, http) and outcome",
    ("frontend", "outcome"),
    stats="Queries",
)
DURATION = Metric(
    "query_duration_seconds",
    "histogram",
    "Seconds from a query request to its answer, by front end",
    ("frontend",),
)
ROWS = Metric(
    "query_rows",
    "counter",
    "Rows queries returned, by where they came from: memory (the ring) or store",
    ("source",),
)
CACHE_HIT = Metric(
    "cache_hit_ratio",
    "gauge",
    "Share of the rows queries returned that the memory ring answered rather than "
    "the store (all time; 0 before the first row)",
    ("cache",),
)


def outcome_of(exc: BaseException | None) -> Outcome:
    """The outcome of a request that ended with `exc` (None: answered)."""
    if exc is None:
        return "ok"
    if isinstance(exc, QueryBusy):
        return "busy"
    if isinstance(exc, QueryTimeout):  # before its base class QueryLimitError
        return "timeout"
    if isinstance(exc, QueryLimitError):
        return "limit"
    return "error"


class QueryMetrics:
    """The counts and duration histograms; written and read on the event loop."""

    __slots__ = ("counts", "durations")

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self.durations: dict[str, Histogram] = {}

    def observe(self, frontend: str, outcome: Outcome, seconds: float) -> None:
        key = (frontend, outcome)
        self.counts[key] = self.counts.get(key, 0) + 1
        histogram = self.durations.get(frontend)
        if histogram is None:
            histogram = self.durations[frontend] = Histogram()
        histogram.observe(seconds)

    def readings(self, out: Readings, rows_memory: int, rows_store: int) -> None:
        out.pairs(QUERIES, self.counts)
        out.declare(DURATION)
        for frontend, histogram in self.durations.items():
            out.histogram(DURATION, histogram, frontend)
        out.add(ROWS, rows_memory, "memory")
        out.add(ROWS, rows_store, "store")
        rows = rows_memory + rows_store
        out.add(CACHE_HIT, rows_memory / rows if rows else 0.0, "memory")
