"""A query as a live filter: what a subscriber of the live fan-out
(pipeline/broker.py) wants, in the one query model every front end uses.

The parameters are QUERY's (level, service, keyword/keywords/operator, regex,
any field=value), parsed by `build_query` within the same `query.` limits.
Those about a result set, not a stream (time_from, time_to, limit, order,
source, max_count, format), are refused: a tail has no time range, order or
size, and a filter that silently ignored them would show what was not asked for.
So is decrypt: a tail shows encrypted fields as stored (docs/encryption.md).
"""

from __future__ import annotations

from logcaster.event import Event
from logcaster.exceptions import QuerySyntaxError
from logcaster.options import QueryConfig
from logcaster.parsing.parse import parse_event
from logcaster.pipeline.batch import Batch
from logcaster.pipeline.broker import PARSE_WHOLE_MAX
from logcaster.query.model import Query
from logcaster.query.parser import build_query
from logcaster.store.text_match import TextTest

NOT_LIVE = ("time_from", "time_to", "limit", "order", "source", "max_count", "format")


def live_filter(params: list[tuple[str, str]], config: QueryConfig) -> LiveFilter:
    """The filter for `key=value` parameters; QuerySyntaxError or QueryLimitError
    for a bad one, as QUERY answers them."""
    for key, _ in params:
        if key.lower() == "decrypt":
            raise QuerySyntaxError("decrypt is not offered on a live tail (use a query)")
        if key.lower() in NOT_LIVE:
            raise QuerySyntaxError(
                f"{key} is not a live filter (a tail has no time range, order or limit)"
            )
    return LiveFilter(build_query(params, config)[0])


class LiveFilter:
    """`EventFilter` (pipeline/broker.py) for a `Query`.

    As for queries over the memory ring (query/engine.py `memory_events`): with
    keyword or regex tests, they run on the raw text first and only the events
    that pass are parsed (one by one, unless the batch is parsed already);
    structured tests (level, service, fields) need every event parsed: the
    batch whole, once, cached for every other reader, unless it is too large
    to parse in one step (`Batch.events_between`).
    """

    __slots__ = ("_match", "_text", "query", "selects_all")

    def __init__(self, query: Query) -> None:
        self.query = query
        # No test at all: a rate cap may skip its steps unparsed (pipeline/tail_rate.py).
        self.selects_all = not (
            query.keywords or query.regex or query.levels or query.services or query.fields
        )
        self._text = None
        if query.keywords or query.regex is not None:
            self._text = TextTest(
                query.keywords, query.operator, query.regex, max_mem=query.regex_max_mem
            )
        self._match = query.matcher(text_tests=self._text is None)

    def select(self, batch: Batch, start: int, stop: int) -> list[Event]:
        match = self._match
        events = batch.cached_events
        text = self._text
        if text is None:
            return [ev for ev in batch.events_between(start, stop, PARSE_WHOLE_MAX) if match(ev)]
        texts = batch.texts
        # A keyword rules the step's texts out together, one C-speed search of them
        # joined instead of a Python call per event (rare matches are what a tail
        # usually asks for); only its candidates take the exact test.
        chosen = text.candidates(texts, start, stop)
        passes = text.matches_text
        out: list[Event] = []
        for i in range(start, stop) if chosen is None else chosen:
            if not passes(texts[i]):
                continue
            if events is not None:
                ev = events[i]
            else:
                ev = parse_event(batch.first_id + i, batch.received_at, batch.source, texts[i])
            if match(ev):
                out.append(ev)
        return out
