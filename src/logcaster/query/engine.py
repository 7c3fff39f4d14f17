"""Run a `Query` over a snapshot of the memory buffer, within its time and scan caps."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from logcaster.event import Batch, Event
from logcaster.exceptions import QueryLimitError, QueryTimeout
from logcaster.query.model import Query

# Check the clock once per this many events: cheap, yet fine-grained enough.
_CLOCK_EVERY = 1024


@dataclass(slots=True)
class QueryResult:
    total: int  # every matching event, not only the rows returned
    rows: list[Event]  # at most `limit`, in the query's order
    scanned: int


def memory_events(
    batches: list[Batch], skip: int, *, newest_first: bool, after_id: int = 0
) -> Iterator[Event]:
    """The events of a memory snapshot (`MemorySink.snapshot`) with ids above `after_id`."""
    if newest_first:
        for index in range(len(batches) - 1, -1, -1):
            batch = batches[index]
            if batch.last_id <= after_id:
                return
            events = batch.events()
            low = max(skip if index == 0 else 0, after_id - batch.first_id + 1)
            for i in range(len(events) - 1, low - 1, -1):
                yield events[i]
        return
    for index, batch in enumerate(batches):
        if batch.last_id <= after_id:
            continue
        low = max(skip if index == 0 else 0, after_id - batch.first_id + 1)
        yield from batch.events()[low:]


def run_query(
    query: Query,
    events: Iterator[Event],
    *,
    limit: int,
    deadline: float,
    timeout: float,
    max_scan: int,
) -> QueryResult:
    """Scan `events` in order; raise QueryLimitError past the time or scan cap."""
    match = query.matcher()
    rows: list[Event] = []
    total = 0
    scanned = 0
    for ev in events:
        scanned += 1
        if scanned % _CLOCK_EVERY == 0:
            if time.monotonic() > deadline:
                raise QueryTimeout(f"query exceeded its time limit of {timeout:g} s")
            if scanned > max_scan:
                raise QueryLimitError(f"query exceeded its scan limit of {max_scan} events")
        if match(ev):
            total += 1
            if len(rows) < limit:
                rows.append(ev)
    return QueryResult(total, rows, scanned)
