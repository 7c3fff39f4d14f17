"""Compiled text plans of recent queries, shared by the reader's queries.

A query's text part (keywords, operator, regex, the `field=value` values the
text must hold) becomes a `Scanner` (store/scan.py: a Hyperscan database, an
RE2 regex) and a `TermPlan` (store/term_lookup.py). Compiling them takes
milliseconds, a noticeable part of a count that the token index answers or a
scan of a few segments; `TextPlans` keeps the last few.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Literal, NamedTuple

from logcaster.store.byte_stats import ByteStats
from logcaster.store.scan import Scanner
from logcaster.store.term_lookup import TermPlan

# Compiled text plans of recent queries kept (each holds a Hyperscan scratch per
# thread that scanned with it: a few KiB touched for the bench's regexes).
_TEXT_PLANS = 8


class TextKey(NamedTuple):
    """What a query's text plan is made of (Plan)."""

    keywords: tuple[str, ...]  # with the field values AND-ed in
    operator: Literal["AND", "OR"]
    regex: str | None
    max_mem: int
    query_keywords: tuple[str, ...]  # the query's own (the token index's pieces)
    fields: tuple[str, ...]


def text_plan(key: TextKey, stats: ByteStats | None) -> tuple[Scanner, TermPlan | None]:
    scanner = Scanner(key.keywords, key.operator, key.regex, stats=stats, max_mem=key.max_mem)
    terms = TermPlan.make(key.query_keywords, key.operator, key.regex, list(key.fields))
    return scanner, terms


class TextPlans:
    """The text plans of recent queries: compiling a Scanner's Hyperscan database and
    its regex takes milliseconds, so a query asked again (a dashboard's refresh, a
    count polled) reuses them. Both are safe to share between threads (a scratch
    per thread); a TermPlan's learning (pieces found in too many terms to prune)
    only ever makes it prune less. Kept per byte statistics: new statistics may
    pick another literal."""

    def __init__(self, size: int = _TEXT_PLANS) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._plans: OrderedDict[TextKey, tuple[Scanner, TermPlan | None]] = OrderedDict()
        self._stats: ByteStats | None = None

    def get(self, key: TextKey, stats: ByteStats | None) -> tuple[Scanner, TermPlan | None]:
        with self._lock:
            if stats is not self._stats:
                self._plans.clear()
                self._stats = stats
            made = self._plans.get(key)
            if made is not None:
                self._plans.move_to_end(key)
                return made
        made = text_plan(key, stats)  # outside the lock: it may take a while
        with self._lock:
            if stats is self._stats:
                self._plans[key] = made
                while len(self._plans) > self._size:
                    self._plans.popitem(last=False)
        return made
