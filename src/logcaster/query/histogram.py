"""Matching events counted by time bucket and level (the dashboard's search
histogram, `GET /api/v1/histogram`).

The same query, limits and split as a search (planner.py): memory answers the
ids above the store's high-water mark, the store the rest, so every match is
counted once. Unlike a search nothing stops early (every match is a count),
so a histogram is bounded by the query's scan and time limits alone
(`query.max_scan`, `query.timeout`): past them it is an error, never a
partial count.

Buckets: `buckets` equal spans from `time_from` to `time_to`; without them,
from the earliest match (else an hour ago) to now (or the latest match, if
later).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from logcaster.exceptions import QueryLimitError, QueryTimeout
from logcaster.parsing.codes import LEVEL_CODES, LEVEL_NAMES
from logcaster.query.engine import CappedScan, memory_events
from logcaster.query.limits import apply_limits
from logcaster.query.model import Query
from logcaster.query.planner import Planner, Snapshot, raw_text_test
from logcaster.store.histogram import stored_matches

MAX_BUCKETS = 1000
DEFAULT_BUCKETS = 60
_NO_RANGE_S = 3600.0


@dataclass(frozen=True, slots=True)
class Histogram:
    edges: list[float]  # buckets + 1 bounds, unix seconds
    counts: dict[str, list[int]]  # level name ("none" for no level) -> a count per bucket
    total: int

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "edges": self.edges, "levels": self.counts}


def histogram(planner: Planner, query: Query, snap: Snapshot, *, buckets: int) -> Histogram:
    """In a query thread: every match of `query` in `snap`, bucketed; QueryLimitError
    past a limit (QueryTimeout past the time limit)."""
    cfg = planner.config
    query = apply_limits(query, cfg)
    if planner.history is not None and query.source != "memory":
        found = planner.history.matches(query, max_rows=cfg.max_scan, timeout=cfg.timeout)
        ts = np.fromiter((t for t, _ in found), np.float64, len(found))
        codes = np.fromiter((LEVEL_CODES.get(lv, 0) for _, lv in found), np.uint8, len(found))
        return _bucket(ts, codes, query, buckets)
    deadline = time.monotonic() + cfg.timeout
    source = query.source or ("all" if planner.store is not None else "memory")
    if source == "store" and planner.store is None:
        raise QueryLimitError("source=store: the store is off (it needs persist.dir)")
    use_memory = source in ("memory", "all")
    use_store = source in ("store", "all") and planner.store is not None
    after = snap.high_water if use_store else snap.hidden_through
    times: list[np.ndarray[Any, np.dtype[np.float64]]] = []
    levels: list[np.ndarray[Any, np.dtype[np.uint8]]] = []
    if use_memory:
        t, lv = _memory_matches(query, snap, after, deadline, cfg.max_scan, cfg.timeout)
        times.append(t)
        levels.append(lv)
    if use_store and snap.high_water > 0:
        assert planner.store is not None
        try:
            t, lv = stored_matches(
                planner.store.reader,
                query,
                snap.high_water,
                deadline=deadline,
                max_scan=cfg.max_scan,
            )
        except QueryTimeout:
            raise QueryTimeout(_timeout_text(cfg.timeout)) from None
        times.append(t)
        levels.append(lv)
    ts = np.concatenate(times) if times else np.empty(0, np.float64)
    codes = np.concatenate(levels) if levels else np.empty(0, np.uint8)
    return _bucket(ts, codes, query, buckets)


def _memory_matches(
    query: Query, snap: Snapshot, after: int, deadline: float, max_scan: int, timeout: float
) -> tuple[np.ndarray[Any, np.dtype[np.float64]], np.ndarray[Any, np.dtype[np.uint8]]]:
    text_test = raw_text_test(query)
    match = query.matcher(text_tests=text_test is None)
    ts: list[float] = []
    codes: list[int] = []
    events = memory_events(
        snap.batches, snap.skip, newest_first=False, after_id=after, text_test=text_test
    )
    for ev in CappedScan(query, deadline, max_scan, _timeout_text(timeout)).events(events):
        if match(ev):
            ts.append(ev.ts)
            codes.append(LEVEL_CODES.get(ev.level, 0))
    return np.array(ts, np.float64), np.array(codes, np.uint8)


def _bucket(
    ts: np.ndarray[Any, np.dtype[np.float64]],
    codes: np.ndarray[Any, np.dtype[np.uint8]],
    query: Query,
    buckets: int,
) -> Histogram:
    now = time.time()
    hi = query.time_to if query.time_to is not None else max(now, float(ts.max(initial=now)))
    if query.time_from is not None:
        lo = query.time_from
    else:
        lo = float(ts.min()) if len(ts) else hi - _NO_RANGE_S
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, buckets + 1)
    slot = np.clip(np.searchsorted(edges, ts, side="right") - 1, 0, buckets - 1)
    table = np.bincount(
        codes.astype(np.int64) * buckets + slot, minlength=len(LEVEL_NAMES) * buckets
    ).reshape(len(LEVEL_NAMES), buckets)
    counts = {(name or "none"): row.tolist() for name, row in zip(LEVEL_NAMES, table, strict=True)}
    return Histogram(edges.tolist(), counts, len(ts))


def _timeout_text(timeout: float) -> str:
    return (
        f"query exceeded its time limit of {timeout:g} s "
        "(query.timeout; narrow it with time_from/time_to, level or service)"
    )
