"""The reader's scan threads: a group of chunks' text scanned in parallel spans.

Hyperscan releases the GIL while it scans, so two threads scan two spans at
once. Adjacent chunk ranges are joined into spans (one Hyperscan call each)
of at most `_MAX_SPAN` bytes, so the deadline is checked between calls.
"""

from __future__ import annotations

import itertools
import mmap
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np
import numpy.typing as npt

from logcaster.store.bulk_rows import PlainOf, rows_from_hits
from logcaster.store.scan import Scanner
from logcaster.store.search import time_limit_error
from logcaster.store.segment_view import SegmentView

I64 = npt.NDArray[np.int64]
_MIB = 1 << 20
_JOIN_GAP = 4096  # at most a block header line lies between adjacent chunks
# A Hyperscan call cannot be interrupted and calls back only on candidates: a
# pattern that never matches but keeps its automaton busy (long bounded repeats
# over text of their letters) scans at ~10 MB/s. Spans stop at this size, so the
# deadline is checked at least this often (0.2-0.4 s there; ~1 ms at usual speeds).
_MAX_SPAN = 2 << 20
# Spans a scan thread turns into rows at once: a call of the row work costs about
# a tenth of a millisecond besides its arrays, and a batch this size holds some
# thousands of matching lines.
_MAX_BATCH = 16 << 20
# Reports per MiB above which one scan thread beats two. Each report is a Python
# callback, and a callback takes the GIL: two threads that both report often
# hand the GIL to each other at every report. Measured on the 5M corpora
# (single thread vs two): 293 reports/MiB 165 vs 253 ms, 619/MiB 282 vs 388 ms;
# 50/MiB 385 vs 211 ms, 16/MiB 192 vs 113 ms.
_DENSE_PER_MIB = 128


class ScanPool:
    """Scan threads that live as long as the reader: starting two threads per group
    cost more than a small group's scan (GIL hand-offs at start and join)."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="store-scan")

    @property
    def executor(self) -> ThreadPoolExecutor:
        return self._pool

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def bulk(
        self,
        scanner: Scanner,
        seg: SegmentView,
        ranges: list[tuple[int, int]],
        rows: list[tuple[int, int]],
        deadline: float,
        plain: PlainOf | None = None,
    ) -> I64:
        """The rows matching in `ranges` (chunk byte ranges, ascending; `rows`: each
        one's [first row, end row)), ascending. The spans are cut into batches; each
        scan thread takes the next batch, scans it (raw reports) and turns its reports
        into rows itself (store/bulk_rows.py): numpy's sorts and searches let go of
        the GIL, so one thread's row work overlaps the other's scan. Once a batch
        shows reports denser than `_DENSE_PER_MIB` the scanner is marked dense
        (for the rest of this scan and later ones of the same plan) and only the
        first thread goes on."""
        spans = _spans(ranges)
        # Each span's rows: from its first chunk's first row to its last chunk's end.
        span_rows = []
        at = 0
        for _lo, hi in spans:
            first = at
            while at < len(ranges) and ranges[at][1] <= hi:
                at += 1
            span_rows.append((rows[first][0], rows[at - 1][1]))
        batches = _batches(spans, self.threads)
        offsets = seg.index.cols["offset"]
        headers = seg.index.blocks["header_offset"].astype(np.int64)
        buf = seg.buf
        found: list[I64 | None] = [None] * len(batches)
        claim = itertools.count()

        def work(lead: bool) -> None:
            while (lead or not scanner.dense) and (k := next(claim)) < len(batches):
                first, end = batches[k]
                hits = []
                for lo, hi in spans[first:end]:
                    if time.monotonic() >= deadline:
                        raise time_limit_error()
                    hits.append(scanner.hits(buf, lo, hi))
                reports = sum(len(h) for h in hits)
                dense = reports * _MIB > _DENSE_PER_MIB * (spans[end - 1][1] - spans[first][0])
                if dense and scanner.reports.get() is None:  # reports in C take no GIL
                    scanner.dense = True
                lo, hi = spans[first][0], spans[end - 1][1]
                r0, r1 = span_rows[first][0], span_rows[end - 1][1]
                heads = headers[np.searchsorted(headers, lo) : np.searchsorted(headers, hi)]
                mine = None if plain is None else partial(_shifted, plain, r0)
                at = rows_from_hits(
                    scanner, buf, np.concatenate(hits), offsets[r0:r1], heads, hi, deadline, mine
                )
                found[k] = at + r0

        parts = 1 if scanner.dense else min(self.threads, len(batches))
        if parts <= 1:
            work(True)
        else:
            for f in [self._pool.submit(work, i == 0) for i in range(parts)]:
                f.result()
        done = [a for a in found if a is not None]
        return np.concatenate(done) if done else np.zeros(0, np.int64)

    def scan(
        self,
        scanner: Scanner,
        buf: mmap.mmap | bytes,
        ranges: list[tuple[int, int]],
        deadline: float,
    ) -> list[int]:
        """Line offsets matching in `ranges`, split over the reader's scan threads.

        The threads live as long as the reader: starting two threads per group
        cost more than a small group's scan (GIL hand-offs at start and join).
        """
        parts = min(self.threads, len(ranges))
        if parts <= 1:
            results = [scanner.scan(buf, _spans(ranges), deadline=deadline)]
        else:
            step = -(-len(ranges) // parts)
            futures = [
                self._pool.submit(
                    scanner.scan, buf, _spans(ranges[i : i + step]), deadline=deadline
                )
                for i in range(0, len(ranges), step)
            ]
            results = [f.result() for f in futures]
        if any(r.stopped == "deadline" for r in results):
            raise time_limit_error()
        return [offset for r in results for offset in r.offsets]


def _batches(spans: list[tuple[int, int]], threads: int) -> list[tuple[int, int]]:
    """[first, end) span numbers of each batch: consecutive spans of at most
    `_MAX_BATCH` bytes, and at least two batches per thread when there is room
    (a thread that drew a batch of many matches is not waited for alone)."""
    total = sum(hi - lo for lo, hi in spans)
    most = max(min(_MAX_BATCH, total // (2 * threads) + 1), 1)
    out: list[tuple[int, int]] = []
    first, size = 0, 0
    for k, (lo, hi) in enumerate(spans):
        if size and size + hi - lo > most:
            out.append((first, k))
            first, size = k, 0
        size += hi - lo
    out.append((first, len(spans)))
    return out


def _shifted(plain: PlainOf, base: int, rows: I64) -> npt.NDArray[np.int8]:
    return plain(rows + base)


def _spans(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Adjacent chunk ranges joined into one: one Hyperscan call per run of chunks.

    Between two adjacent chunks lies one block header line; scanning it is
    harmless (a match there maps to no index row and is dropped) and far cheaper
    than a call per 1 MiB chunk.
    """
    spans = [ranges[0]]
    for lo, hi in ranges[1:]:
        if lo - spans[-1][1] <= _JOIN_GAP and hi - spans[-1][0] <= _MAX_SPAN:
            spans[-1] = (spans[-1][0], hi)
        else:
            spans.append((lo, hi))
    return spans
