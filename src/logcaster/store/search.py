"""Answer the text and structured parts of a query over one indexed segment.

Structured filters (level, service, event time) prune chunks by their
summaries; the text part (keywords, regex) is scanned with Hyperscan over the
surviving chunks only; each match's line offset is mapped to its index row
(a line that is no row, i.e. a block header, is dropped), and the rows are
filtered by the structured part. The count is exact; rows come newest first
(or oldest first) up to the limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from logcaster.exceptions import QueryLimitError, QueryTimeout
from logcaster.store.bulk_rows import rows_from_hits
from logcaster.store.filters import RowFilter
from logcaster.store.index import SegmentIndex
from logcaster.store.scan import Buffer, Scanner

I64 = npt.NDArray[np.int64]


class ScanBudget:
    """`query.max_scan` of one query: the events of the chunks it reads (text scanned
    or rows filtered one by one), charged before each read. Chunks that the summaries
    or the token index rule out, or whose rows the bitmaps give, are not read."""

    __slots__ = ("limit", "scanned")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.scanned = 0

    def charge(self, events: int) -> None:
        self.scanned += events
        if self.scanned > self.limit:
            raise scan_limit_error(self.limit)


def time_limit_error() -> QueryTimeout:
    return QueryTimeout("query exceeded its time limit")


def scan_limit_error(max_scan: int) -> QueryLimitError:
    return QueryLimitError(
        f"query would scan more than {max_scan} stored events (query.max_scan); "
        "narrow it with time_from/time_to, level or service"
    )


@dataclass(slots=True)
class SegmentMatches:
    count: int = 0
    ids: list[int] = field(default_factory=list)  # at most `limit`, in the asked order
    offsets: list[int] = field(default_factory=list)  # the rows' line offsets, same order
    stopped: str | None = None  # "deadline" or "cancelled": count and rows are partial


def ids_of_rows(index: SegmentIndex, rows: I64) -> I64:
    """Event ids of index rows: ids run consecutively within each chunk."""
    starts = index.chunks["row_start"].astype(np.int64)
    chunk = np.searchsorted(starts, rows, side="right") - 1
    return index.chunks["first_id"].astype(np.int64)[chunk] + (rows - starts[chunk])


def _take(index: SegmentIndex, rows: I64, limit: int, newest_first: bool) -> SegmentMatches:
    picked = rows[::-1][:limit] if newest_first else rows[:limit]
    return SegmentMatches(
        count=len(rows),
        ids=ids_of_rows(index, picked).tolist(),
        offsets=index.cols["offset"][picked].astype(np.int64).tolist(),
    )


def search_segment(
    buf: Buffer,
    index: SegmentIndex,
    scanner: Scanner | None,
    where: RowFilter,
    *,
    limit: int,
    newest_first: bool = True,
    threads: int = 1,
    deadline: float | None = None,
) -> SegmentMatches:
    """Matches in one segment (`buf`: its bytes or an mmap of it)."""
    cols = index.cols
    kept = [i for i, chunk in enumerate(index.chunks) if where.chunk_count(chunk) != 0]
    if scanner is None:
        # Structured only: rows of the chunks the summaries did not rule out.
        return _take(index, rows_in_chunks(index, kept, where), limit, newest_first)
    ranges = [(int(index.chunks[i]["byte_start"]), int(index.chunks[i]["byte_end"])) for i in kept]
    result = scanner.scan(buf, ranges, threads=threads, deadline=deadline)
    rows = rows_at_offsets(cols, 0, len(cols), result.offsets)
    if where.narrows:
        rows = rows[where.rows_mask(cols[rows])]
    matches = _take(index, rows, limit, newest_first)
    matches.stopped = result.stopped
    return matches


def rows_in_chunks(index: SegmentIndex, chunks: list[int], where: RowFilter) -> I64:
    """The rows of the given chunks that pass the structured filter, ascending."""
    parts = []
    table = index.chunks
    # Adjacent chunks' rows are contiguous: one mask per run, not per chunk.
    runs: list[list[int]] = []
    for i in chunks:
        start, end = int(table[i]["row_start"]), int(table[i]["row_start"] + table[i]["count"])
        if runs and runs[-1][1] == start:
            runs[-1][1] = end
        else:
            runs.append([start, end])
    for start, end in runs:
        mask = where.rows_mask(index.cols[start:end])
        parts.append(np.flatnonzero(mask).astype(np.int64) + start)
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def few_rows(index: SegmentIndex, chunks: list[int], where: RowFilter, most: int) -> I64 | None:
    """The rows of the given chunks (ascending) that pass the structured filter, if
    at most `most`; else None (also without a filter). The chunk summaries count
    most chunks exactly and rule out those with none; the rows of the others are
    filtered (`rows_in_chunks`: a scan group, at most _MAX_GROUP chunks)."""
    if not where.narrows or not chunks:
        return None
    counts = where.chunk_counts(index.chunks[chunks])
    if int(counts[counts > 0].sum()) > most:
        return None
    open_chunks = [i for i, n in zip(chunks, counts.tolist(), strict=True) if n]
    rows = rows_in_chunks(index, open_chunks, where)
    return rows if len(rows) <= most else None


def rows_at_offsets(cols: npt.NDArray[np.void], lo: int, hi: int, offsets: list[int]) -> I64:
    """The index rows in [lo, hi) whose lines start at `offsets`, ascending.

    A match on a line that is no row (a block header scanned between two
    chunks) is dropped.
    """
    if not offsets:
        return np.zeros(0, np.int64)
    needles = np.sort(np.asarray(offsets, np.int64))
    line_offsets = cols["offset"][lo:hi]  # uint32, read only where searched
    # Needles of the haystack's dtype: else numpy converts all of it per call.
    rows = np.searchsorted(line_offsets, needles.astype(np.uint32))
    inside = rows < len(line_offsets)
    rows, needles = rows[inside], needles[inside]
    found: I64 = rows[line_offsets[rows] == needles].astype(np.int64) + lo
    return found


def in_chunks(rows: I64, chunks: npt.NDArray[np.void], group: list[int]) -> npt.NDArray[np.bool_]:
    """Which of `rows` belong to the chunks numbered `group` (ascending)."""
    starts = chunks["row_start"][group].astype(np.int64)
    ends = starts + chunks["count"][group].astype(np.int64)
    at = np.searchsorted(starts, rows, side="right") - 1
    inside: npt.NDArray[np.bool_] = (at >= 0) & (rows < ends[np.maximum(at, 0)])
    return inside


def matching_rows(
    scanner: Scanner, buf: Buffer, index: SegmentIndex, rows: I64, deadline: float
) -> I64:
    """Which of `rows` (ascending) match `scanner`: their lines gathered and scanned
    once (a few rows of many chunks: cheaper than scanning the chunks)."""
    if not len(rows):
        return rows
    offsets = index.cols["offset"]
    starts = offsets[rows].astype(np.int64)
    # A row's line ends where the next line starts: the next row's, or the next
    # block's header. (Bytes past the line's newline are other lines: a match
    # there starts at no row's place and is dropped below.)
    last = int(index.chunks["byte_end"][-1])
    after = offsets[np.minimum(rows + 1, len(offsets) - 1)].astype(np.int64)
    after[rows + 1 >= len(offsets)] = last
    # (Appending `last` keeps the lookup in bounds, also for an empty block table.)
    headers = np.append(index.blocks["header_offset"].astype(np.int64), last)
    ends = np.minimum(after, headers[np.searchsorted(headers[:-1], starts, side="right")])
    # Scanned in place where the reports are collected in C (store/hs_reports.py):
    # `bounds` holds each line's start and end, so each row is at an even place and
    # its line ends at the next (rows_from_hits confirms lines between bounds).
    bounds = np.column_stack([starts, ends]).ravel()
    hits = scanner.hits_in_ranges(buf, bounds)
    if hits is not None:
        none = np.zeros(0, np.int64)
        at = rows_from_hits(scanner, buf, hits, bounds, none, int(ends[-1]), deadline)
        gathered: I64 = rows[at[at % 2 == 0] // 2]
        return gathered
    lines = [buf[s:e] for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
    joined = b"".join(lines)
    at = np.zeros(len(lines), np.int64)
    np.cumsum(np.fromiter(map(len, lines), np.int64, len(lines))[:-1], out=at[1:])
    result = scanner.scan(joined, [(0, len(joined))], deadline=deadline)
    if result.stopped == "deadline":
        raise time_limit_error()
    found = np.asarray(result.offsets, np.int64)
    k = np.minimum(np.searchsorted(at, found), len(at) - 1)
    hit: I64 = rows[k[at[k] == found]]
    return hit


def group_size(size: int, walked: int, found: int, need: int) -> int:
    """Chunks in a walk's next group: `size` (4 times the last group), or fewer once
    matches were seen: as many as the `need` matches still missing take at the rate
    of the `walked` chunks so far, and a quarter more. The newest 100 of a word in
    1 event of 1,000 (11 a chunk) read 9-11 chunks this way, not 21 (1 + 4 + 16)."""
    if found <= 0 or need <= 0:
        return size
    return max(1, min(size, math.ceil(need * 1.25 * walked / found)))
