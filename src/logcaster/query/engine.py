"""Run a `Query` over the memory buffer, within the query's time and scan caps."""

from __future__ import annotations

import time
from dataclasses import dataclass

from logcaster.event import Event
from logcaster.exceptions import QueryLimitError
from logcaster.query.model import Query
from logcaster.sinks.memory import MemorySink

# Check the clock once per this many events: cheap, yet fine-grained enough.
_CLOCK_EVERY = 1024


@dataclass(slots=True)
class QueryResult:
    total: int  # every matching event, not only the rows returned
    rows: list[Event]  # at most `limit`, in the query's order
    scanned: int


def run_query(query: Query, memory: MemorySink, timeout: float, max_scan: int) -> QueryResult:
    """Scan newest (or oldest) first; raise QueryLimitError past the time or scan cap."""
    match = query.matcher()
    limit = query.limit
    events = memory.newest_first() if query.order == "desc" else memory.oldest_first()
    deadline = time.monotonic() + timeout
    rows: list[Event] = []
    total = 0
    scanned = 0
    for ev in events:
        scanned += 1
        if scanned % _CLOCK_EVERY == 0:
            if time.monotonic() > deadline:
                raise QueryLimitError(f"query exceeded its time limit of {timeout:g} s")
            if scanned > max_scan:
                raise QueryLimitError(f"query exceeded its scan limit of {max_scan} events")
        if match(ev):
            total += 1
            if len(rows) < limit:
                rows.append(ev)
    return QueryResult(total, rows, scanned)
