"""Run a `Query` over a snapshot of the memory buffer, within its time and scan caps."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from logcaster.event import Event
from logcaster.exceptions import QueryLimitError, QueryTimeout
from logcaster.parsing.parse import parse_event
from logcaster.pipeline.batch import Batch
from logcaster.query.model import Query
from logcaster.query.order import TopEvents
from logcaster.store.text_match import TextTest

# Check the clock once per this many events: cheap, yet fine-grained enough.
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
    text_test: TextTest | None = None,
) -> Iterator[Event | int | None]:
    """The events of a memory snapshot (`MemorySink.snapshot`) with ids above `after_id`.

    With `text_test` (the query's keyword/regex tests on raw text, exact like
    the parsed body's), an event whose text fails it is yielded as None, not
    parsed: a text query over a buffer nobody parsed yet costs a byte search
    per event, not a parse. Where a keyword rules texts out in bulk
    (`TextTest.candidates`), the events it rules out are yielded as their
    number, an int, once per batch: a rare keyword over 100,000 unindexed events
    cost ~1.4 us of Python each, a poll of the latency bench 280 ms.
    """
    for index in range(len(batches) - 1, -1, -1) if newest_first else range(len(batches)):
        batch = batches[index]
        if batch.last_id <= after_id:
            if newest_first:
                return
            continue
        low = max(skip if index == 0 else 0, after_id - batch.first_id + 1)
        span: Sequence[int] = range(low, len(batch))
        # Structured tests need every event parsed (and cached for the next
        # query); text tests parse only the events whose text passes.
        events = batch.events() if text_test is None else batch.cached_events
        if text_test is not None:
            payload = batch.payload  # a payload is searched as it is: no texts decoded
            if payload is not None:
                chosen = text_test.payload_candidates(payload, len(batch), low, len(batch))
            else:
                chosen = text_test.candidates(batch.texts, low, len(batch))
            if chosen is not None:
                if len(chosen) < len(span):
                    yield len(span) - len(chosen)
                span = chosen
        if not span:
            continue
        texts = batch.texts
        test = None if text_test is None else text_test.matches_text
        for i in reversed(span) if newest_first else span:
            if test is not None and not test(texts[i]):
                yield None
            elif events is not None:
                yield events[i]
            else:
                yield parse_event(batch.first_id + i, batch.received_at, batch.source, texts[i])


class CappedScan:
    """Walks `memory_events`' output within a query's time and scan caps: yields
    the events left to test and counts in `scanned` every event passed over
    (ruled out in bulk or one by one). With a regex the clock is read at every
    event: within the query limits RE2 can still take tens of milliseconds on
    one long event."""

    __slots__ = ("deadline", "every", "max_scan", "scanned", "timeout_text")

    def __init__(self, query: Query, deadline: float, max_scan: int, timeout_text: str) -> None:
        self.deadline = deadline
        self.max_scan = max_scan
        self.timeout_text = timeout_text
        self.every = 1 if query.regex is not None else _CLOCK_EVERY
        self.scanned = 0

    def events(self, items: Iterator[Event | int | None]) -> Iterator[Event]:
        for ev in items:
            if isinstance(ev, int):  # events ruled out in bulk
                self.scanned += ev
                check = True
            else:
                self.scanned += 1
                check = self.scanned % self.every == 0
            if check:
                if time.monotonic() > self.deadline:
                    raise QueryTimeout(self.timeout_text)
                if self.scanned > self.max_scan:
                    raise QueryLimitError(
                        f"query exceeded its scan limit of {self.max_scan} events"
                    )
            if ev is not None and not isinstance(ev, int):
                yield ev


def run_query(
    query: Query,
    events: Iterator[Event | int | None],
    *,
    limit: int,
    deadline: float,
    timeout: float,
    max_scan: int,
    text_tested: bool = False,
) -> QueryResult:
    """Scan `events` (None: an event already known not to match, an int: that many
    of them); raise QueryLimitError past the time or scan cap. Rows are ordered by
    event time, not arrival (order.TopEvents). text_tested: `events` passed the
    keyword and regex tests already (memory_events with a text_test)."""
    match = query.matcher(text_tests=not text_tested)
    rows = TopEvents(limit, query.order == "desc")
    scan = CappedScan(query, deadline, max_scan, f"query exceeded its time limit of {timeout:g} s")
    total = 0
    for ev in scan.events(events):
        if match(ev):
            total += 1
            rows.add(ev)
    return QueryResult(total, rows.events(), scan.scanned)
