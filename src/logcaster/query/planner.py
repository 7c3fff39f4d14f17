"""The one query path every front end uses: memory, the store, or both.

`Planner.prepare` runs on the event loop and takes a consistent snapshot: the
memory buffer's batches and the store's high-water id `S`. `Planner.run`
executes it in a query thread. With `source=all` (the default with the store
on) the split is by id: the store answers ids up to `S`, memory the ids after
it, so the union has every event once, restarts included (replayed memory
events at or below `S` are ignored).

Rows are ordered by event time, ties by id (newest first, or oldest first
with `order=asc`), whatever their source: memory keeps its best `limit`
(query/order.py), the store walks its chunks by event time with memory's rows
as the bar to beat (store/order.py), and the two are merged, then cut to
`limit`.

`FOUND` has one rule for every source: exact up to `max_count` matches (the
query's, else `query.max_count`), then `max_count+` (`capped`). The store
counts only what is still needed to tell (max_count + 1 minus memory's count).

It counts the rows it returns by where they came from (`rows_memory`,
`rows_store`): the memory ring is the cache in front of the store, and
/metrics shows the share it answered (`logcaster_cache_hit_ratio`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from logcaster.event import Event
from logcaster.exceptions import QueryLimitError, QueryTimeout
from logcaster.options import QueryConfig
from logcaster.pipeline.batch import Batch
from logcaster.query.engine import memory_events, run_query
from logcaster.query.limits import apply_limits
from logcaster.query.model import Query
from logcaster.query.order import sort_events
from logcaster.sinks.memory import MemorySink
from logcaster.store.service import Store
from logcaster.store.text_match import TextTest

if TYPE_CHECKING:  # scale-out's query node only: psycopg stays out of a default server
    from logcaster.scaleout.history import History


@dataclass(frozen=True, slots=True)
class Snapshot:
    batches: list[Batch]
    skip: int
    high_water: int  # the store's S (0 without a store)
    oldest_memory_id: int | None
    hidden_through: int = 0  # CLEAR hid memory's events up to this id from memory's views


@dataclass(slots=True)
class Answer:
    total: int
    rows: list[Event]
    capped: bool = False  # more than max_count matches: total is max_count, shown "N+"
    max_count: int = 0
    # Events neither memory nor the store can answer yet (the indexer is behind
    # by more than store.max_unindexed): (first id, last id).
    unindexed: tuple[int, int] | None = None


class Planner:
    def __init__(self, config: QueryConfig, memory: MemorySink, store: Store | None) -> None:
        self.config = config
        self.memory = memory
        self.store = store
        # Scale-out's query node (scaleout.history): PostgreSQL answers in the store's
        # place; only source=memory still reads this node's own ring.
        self.history: History | None = None
        self.rows_memory = 0  # rows returned from the memory ring, all time
        self.rows_store = 0  # rows returned from the store
        self._rows_lock = threading.Lock()  # queries run in several threads

    def prepare(self) -> Snapshot:
        """On the event loop: what this query sees, fixed at its start."""
        batches, skip = self.memory.snapshot()
        high_water = self.store.high_water if self.store is not None else 0
        return Snapshot(
            batches, skip, high_water, self.memory.oldest_id, self.memory.hidden_through
        )

    def run(self, query: Query, snap: Snapshot) -> Answer:
        """In a query thread: the rows and count, or QueryLimitError."""
        # The parser checked already; this holds for a Query built any other way.
        query = apply_limits(query, self.config)
        try:
            return self._run(query, snap)
        except QueryTimeout:
            raise QueryTimeout(
                f"query exceeded its time limit of {self.config.timeout:g} s "
                "(query.timeout; narrow it with time_from/time_to, level or service, "
                "or a lower max_count)"
            ) from None

    def _run(self, query: Query, snap: Snapshot) -> Answer:
        cfg = self.config
        if self.history is not None and query.source != "memory":
            return self._run_history(self.history, query)
        deadline = time.monotonic() + cfg.timeout
        source = query.source or ("all" if self.store is not None else "memory")
        if source == "store" and self.store is None:
            raise QueryLimitError("source=store: the store is off (it needs persist.dir)")
        max_count = query.max_count or cfg.max_count
        limit = query.limit
        desc = query.order == "desc"
        use_memory = source in ("memory", "all")
        use_store = source in ("store", "all") and self.store is not None
        # With the store, memory answers every id above S, cleared ones included:
        # they are stored events the index does not hold yet (MemorySink.clear).
        after = snap.high_water if use_store else snap.hidden_through
        answer = Answer(0, [], max_count=max_count)
        # Memory first (small, always scanned whole): its rows are the bar the
        # store's rows must beat, so the store stops as soon as they are settled.
        if use_memory:
            text_test = raw_text_test(query)
            events = memory_events(
                snap.batches,
                snap.skip,
                newest_first=desc,
                after_id=after,
                text_test=text_test,
            )
            found = run_query(
                query,
                events,
                limit=limit,
                deadline=deadline,
                timeout=cfg.timeout,
                max_scan=cfg.max_scan,
                text_tested=text_test is not None,
            )
            answer.total += found.total
            answer.rows = found.rows
        if use_store and snap.high_water > 0:
            assert self.store is not None
            seed = (
                np.array([ev.ts for ev in answer.rows], np.float64),
                np.array([ev.id for ev in answer.rows], np.int64),
            )
            result = self.store.reader.search(
                query,
                snap.high_water,
                limit=limit,
                # FOUND needs max_count + 1 matches to know it is past max_count.
                max_count=max(0, max_count + 1 - answer.total),
                deadline=deadline,
                max_scan=cfg.max_scan,
                seed=seed,
            )
            answer.total += result.count
            if result.rows:
                answer.rows = sort_events(answer.rows + result.rows, desc)[:limit]
        # One rule for every source: exact up to max_count, then "max_count+".
        if answer.total > max_count:
            answer.total = max_count
            answer.capped = True
        oldest = snap.oldest_memory_id
        if use_store and oldest is not None and oldest > snap.high_water + 1:
            answer.unindexed = (snap.high_water + 1, oldest - 1)
        # The split is by id: with the store, memory answered the ids above S.
        split = snap.high_water if use_store else 0
        from_memory = sum(1 for ev in answer.rows if ev.id > split)
        with self._rows_lock:
            self.rows_memory += from_memory
            self.rows_store += len(answer.rows) - from_memory
        return answer

    def _run_history(self, history: History, query: Query) -> Answer:
        max_count = query.max_count or self.config.max_count
        found = history.search(
            query, limit=query.limit, max_count=max_count, timeout=self.config.timeout
        )
        answer = Answer(min(found.count, max_count), found.rows, found.count > max_count, max_count)
        with self._rows_lock:
            self.rows_store += len(found.rows)
        return answer


def raw_text_test(query: Query) -> TextTest | None:
    """The query's keyword/regex tests on raw event text, or None if it has none.

    Exact like the parsed body's tests (Scanner.matches_text), so memory skips
    parsing the events they rule out; built without a Hyperscan database.
    """
    if not query.keywords and query.regex is None:
        return None
    return TextTest(query.keywords, query.operator, query.regex, max_mem=query.regex_max_mem)
