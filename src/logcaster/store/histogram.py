"""Every stored match's event time and level, for a histogram (query/histogram.py).

The same plan as a search (reader.py: the summaries prune chunks, Hyperscan
scans the text part, field tests confirm on the parsed event), but nothing
stops early: a histogram needs every match, so the rows of every chunk the
summaries leave are read (the index columns only, unless a text or field test
needs the bytes), within the query's scan and time limits.
"""

from __future__ import annotations

import time

import numpy as np
import numpy.typing as npt

from logcaster.query.model import Query
from logcaster.store.reader import Plan, StoreReader, confirmed
from logcaster.store.search import ScanBudget, time_limit_error

F64 = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]


def stored_matches(
    reader: StoreReader, query: Query, high_water: int, *, deadline: float, max_scan: int
) -> tuple[F64, U8]:
    """Event times and level codes (parsing/codes.py) of the stored matches up to `high_water`."""
    segments, services = reader.snapshot(high_water)
    plan = Plan(query, services, reader.byte_stats(segments))
    times: list[F64] = [np.empty(0, np.float64)]
    levels: list[U8] = [np.empty(0, np.uint8)]
    if plan.empty or not segments:
        return times[0], levels[0]
    walk = reader.walk(plan, segments, newest_first=True)
    budget = ScanBudget(max_scan)
    for part in np.unique(walk.parts).tolist():
        chunks = np.sort(walk.chunks[walk.parts == part])
        seg = segments[part]
        if time.monotonic() >= deadline:
            raise time_limit_error()
        rows = reader.match_rows(plan, seg, chunks.tolist(), deadline, budget)
        if plan.confirm is not None:
            rows = confirmed(plan.confirm, seg, rows, deadline)
        cols = seg.index.cols
        times.append(cols["ts"][rows].astype(np.float64))
        levels.append(cols["level"][rows].astype(np.uint8))
    return np.concatenate(times), np.concatenate(levels)
