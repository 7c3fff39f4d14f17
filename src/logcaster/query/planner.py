"""The one query path every front end uses: memory, the store, or both.

`Planner.prepare` runs on the event loop and takes a consistent snapshot: the
memory buffer's batches and the store's high-water id `S`. `Planner.run`
executes it in a query thread. With `source=all` (the default with the store
on) the split is by id: the store answers ids up to `S`, memory the ids after
it, so the union has every event once, restarts included (replayed memory
events at or below `S` are ignored). Newest first, memory then store;
oldest first (`order=asc`), store then memory.

`FOUND` is exact up to `max_count` matches (the query's, else
`query.max_count`); past it the store stops counting once it has the rows, and
the answer says `capped`. Memory counts are always exact (memory is small).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from logcaster.config import QueryConfig
from logcaster.event import Batch, Event
from logcaster.exceptions import QueryLimitError, QueryTimeout
from logcaster.query.engine import memory_events, run_query
from logcaster.query.limits import apply_limits
from logcaster.query.model import Query
from logcaster.sinks.memory import MemorySink
from logcaster.store.scan import TextTest
from logcaster.store.service import Store


@dataclass(frozen=True, slots=True)
class Snapshot:
    batches: list[Batch]
    skip: int
    high_water: int  # the store's S (0 without a store)
    oldest_memory_id: int | None


@dataclass(slots=True)
class Answer:
    total: int
    rows: list[Event]
    capped: bool = False  # total is a lower bound: counting stopped at max_count
    max_count: int = 0
    # Events neither memory nor the store can answer yet (the indexer is behind
    # by more than store.max_unindexed): (first id, last id).
    unindexed: tuple[int, int] | None = None


class Planner:
    def __init__(self, config: QueryConfig, memory: MemorySink, store: Store | None) -> None:
        self.config = config
        self.memory = memory
        self.store = store

    def prepare(self) -> Snapshot:
        """On the event loop: what this query sees, fixed at its start."""
        batches, skip = self.memory.snapshot()
        high_water = self.store.high_water if self.store is not None else 0
        return Snapshot(batches, skip, high_water, self.memory.oldest_id)

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
        deadline = time.monotonic() + cfg.timeout
        source = query.source or ("all" if self.store is not None else "memory")
        if source == "store" and self.store is None:
            raise QueryLimitError("source=store: the store is off (it needs persist.dir)")
        max_count = query.max_count or cfg.max_count
        limit = query.limit
        desc = query.order == "desc"
        use_memory = source in ("memory", "all")
        use_store = source in ("store", "all") and self.store is not None
        after = snap.high_water if use_store else 0
        answer = Answer(0, [], max_count=max_count)
        parts = ["memory", "store"] if desc else ["store", "memory"]
        for part in parts:
            room = limit - len(answer.rows)
            if part == "memory" and use_memory:
                events = memory_events(
                    snap.batches,
                    snap.skip,
                    newest_first=desc,
                    after_id=after,
                    text_test=_text_test(query),
                )
                found = run_query(
                    query,
                    events,
                    limit=room,
                    deadline=deadline,
                    timeout=cfg.timeout,
                    max_scan=cfg.max_scan,
                )
                answer.total += found.total
                answer.rows.extend(found.rows)
            elif part == "store" and use_store and snap.high_water > 0:
                assert self.store is not None
                costly = bool(query.keywords or query.regex is not None or query.fields)
                if costly and desc and answer.total >= max_count and room <= 0:
                    # The newer part alone filled rows and count. (Level, service and
                    # time counts come from the index summaries: always asked, exact.)
                    answer.capped = True
                    continue
                result = self.store.reader.search(
                    query,
                    snap.high_water,
                    limit=room,
                    max_count=max(1, max_count - answer.total),
                    deadline=deadline,
                    max_scan=cfg.max_scan,
                )
                answer.total += result.count
                answer.rows.extend(result.rows)
                answer.capped |= result.capped
        oldest = snap.oldest_memory_id
        if use_store and oldest is not None and oldest > snap.high_water + 1:
            answer.unindexed = (snap.high_water + 1, oldest - 1)
        return answer


def _text_test(query: Query) -> Callable[[bytes], bool] | None:
    """The query's keyword/regex tests on raw event text, or None if it has none.

    Exact like the parsed body's tests (Scanner.matches_text), so memory skips
    parsing the events they rule out; built without a Hyperscan database.
    """
    if not query.keywords and query.regex is None:
        return None
    return TextTest(
        query.keywords, query.operator, query.regex, max_mem=query.regex_max_mem
    ).matches_text
