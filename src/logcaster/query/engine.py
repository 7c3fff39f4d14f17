"""Run a `Query` over a snapshot of the memory buffer, within its time and scan caps."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from logcaster.event import Event
from logcaster.exceptions import QueryLimitError, QueryTimeout
from logcaster.parsing.parse import parse_event
from logcaster.pipeline.batch import Batch
from logcaster.query.model import Query
from logcaster.query.order import TopEvents

# Check the clock once per this many events: cheap, yet fine-grained enough.
# With a regex, at every event: within the query. limits RE2 can still take
# tens of milliseconds on one long event.
_CLOCK_EVERY = 1024


@dataclass(slots=True)
class QueryResult:
    total: int  # every matching event, not only the rows returned
    rows: list[Event]  # the first `limit` by event time (ties by id) in the query's order
    scanned: int


def memory_events(
    batches: list[Batch],
    skip: int,
    *,
    newest_first: bool,
    after_id: int = 0,
    text_test: Callable[[bytes], bool] | None = None,
) -> Iterator[Event | None]:
    """The events of a memory snapshot (`MemorySink.snapshot`) with ids above `after_id`.

    With `text_test` (the query's keyword/regex tests on raw text, exact like
    the parsed body's), an event whose text fails it is yielded as None, not
    parsed: a text query over a buffer nobody parsed yet costs a byte search
    per event, not a parse.
    """
    for index in range(len(batches) - 1, -1, -1) if newest_first else range(len(batches)):
        batch = batches[index]
        if batch.last_id <= after_id:
            if newest_first:
                return
            continue
        low = max(skip if index == 0 else 0, after_id - batch.first_id + 1)
        span = range(len(batch) - 1, low - 1, -1) if newest_first else range(low, len(batch))
        # Structured tests need every event parsed (and cached for the next
        # query); text tests parse only the events whose text passes.
        events = batch.events() if text_test is None else batch.cached_events
        texts = batch.texts
        for i in span:
            if text_test is not None and not text_test(texts[i]):
                yield None
            elif events is not None:
                yield events[i]
            else:
                yield parse_event(batch.first_id + i, batch.received_at, batch.source, texts[i])


def run_query(
    query: Query,
    events: Iterator[Event | None],
    *,
    limit: int,
    deadline: float,
    timeout: float,
    max_scan: int,
    text_tested: bool = False,
) -> QueryResult:
    """Scan `events` (None: an event already known not to match); raise
    QueryLimitError past the time or scan cap. Rows are ordered by event time,
    not arrival (order.TopEvents). text_tested: `events` passed the keyword and
    regex tests already (memory_events with a text_test)."""
    match = query.matcher(text_tests=not text_tested)
    rows = TopEvents(limit, query.order == "desc")
    every = 1 if query.regex is not None else _CLOCK_EVERY
    total = 0
    scanned = 0
    for ev in events:
        scanned += 1
        if scanned % every == 0:
            if time.monotonic() > deadline:
                raise QueryTimeout(f"query exceeded its time limit of {timeout:g} s")
            if scanned > max_scan:
                raise QueryLimitError(f"query exceeded its scan limit of {max_scan} events")
        if ev is not None and match(ev):
            total += 1
            rows.add(ev)
    return QueryResult(total, rows.events(), scanned)
