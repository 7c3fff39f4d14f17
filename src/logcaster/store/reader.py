"""Answer a query from the store: every indexed event up to the high-water id.

Runs in a query thread, never on the event loop. `StoreReader` keeps, per
segment, its verified index and an mmap of its text, refreshed when the index
grew; a query takes a snapshot of them cut at the high-water id `S` (events
after it are the memory buffer's: the planner's split, docs/store-design.md),
and its answer's rows are read back as events there (store/segment_view.py).

Answers are in event-time order, ties by id (store/order.py). A query walks
the chunks its structured filters leave (chunk summaries), over every
segment, by the best event time each may hold (newest first, or oldest first
for `order=asc`), in groups that grow 1, 4, 16, 64 chunks: Hyperscan scans a
group's text, the matching lines become index rows, the rows are filtered by
level, service and time, and `field=value` tests (and names beyond the
service dictionary) are confirmed on the parsed event. It stops once its
`limit` rows are settled (no chunk left can beat them) and it counted
`max_count` matches: so the newest 100 matches of a common word cost a chunk
or two. Chunks only counted, with structured filters only, are counted from
their summaries without reading a row.

Costs: `deadline` and `max_scan` (events in the chunks scanned or filtered
row by row) raise `QueryLimitError` when passed.
"""

from __future__ import annotations

import mmap
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import numpy.typing as npt

from logcaster.event import Event
from logcaster.parsing.codes import LEVEL_CODES, ServiceCodes
from logcaster.query.model import Query
from logcaster.store.byte_stats import ByteStats
from logcaster.store.catalog import index_base, index_dir, index_file, list_segments
from logcaster.store.filters import RowFilter
from logcaster.store.index import CHUNKS_SUFFIX, SegmentIndex, load_index
from logcaster.store.indexer import SERVICES_NAME
from logcaster.store.order import TopRows
from logcaster.store.received_first import take_received_first
from logcaster.store.scan import Scanner
from logcaster.store.scan_pool import ScanPool
from logcaster.store.search import (
    ScanBudget,
    few_rows,
    group_size,
    ids_of_rows,
    in_chunks,
    matching_rows,
    rows_at_offsets,
    rows_in_chunks,
    time_limit_error,
)
from logcaster.store.segment_bloom import SegmentBlooms
from logcaster.store.segment_view import (
    CachedIndex,
    SegmentView,
    cut_at_high_water,
    events_at_rows,
    top_events,
)
from logcaster.store.term_lookup import TermPlan
from logcaster.store.term_views import TermViews, plain_rows
from logcaster.store.text_plans import TextKey, TextPlans, text_plan
from logcaster.store.walk import Walk

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
B1 = npt.NDArray[np.bool_]
_MAX_GROUP = 64  # chunks in one scan step at most (~64 MiB)
# A token-index decision over this many chunks that ruled none out and answered
# none from bitmaps marks the segment fruitless for the query's plan (TermPlan).
_LEARN_FROM = 16
# The structured filter's rows of the chunks to scan are read alone when they are
# at most 1/_FEW_ROWS of those chunks' rows: gathering a line and scanning it took
# 600-900 ns, a line scanned in place 50-120 ns (1M-line default corpus).
_FEW_ROWS = 32
_STATS_TTL_S = 300.0  # byte statistics of recent text are this fresh


@dataclass(slots=True)
class StoreResult:
    count: int = 0
    capped: bool = False  # more matches may exist than `count` (max_count reached)
    rows: list[Event] = field(default_factory=list)
    scanned: int = 0  # events in the chunks scanned or filtered row by row


class Plan:
    """A query's store-side parts: text scanner, row filter, confirmation test."""

    def __init__(
        self,
        query: Query,
        services: ServiceCodes,
        stats: ByteStats | None,
        texts: TextPlans | None = None,
    ) -> None:
        self.empty = False  # nothing in the store can match (an unknown service)
        levels = frozenset(LEVEL_CODES[name] for name in query.levels) if query.levels else None
        codes: frozenset[int] | None = None
        confirm_services = False
        if query.services:
            known = {services.get(name) for name in query.services} - {None}
            found = frozenset(c for c in known if c is not None)
            if services.full:
                # Names past the dictionary's capacity share OTHER: confirm them.
                found |= {ServiceCodes.OTHER}
                confirm_services = True
            codes = found
            self.empty = not found
        self.where = RowFilter(levels, codes, query.time_from, query.time_to)
        # field=value: its value must be in the text where written as is (plain
        # ASCII, nothing JSON or the escaping would change); the parsed event decides.
        literals = [
            value
            for name, value in query.fields
            if name != "source"
            and value.isascii()
            and value.isprintable()
            and not any(c in value for c in '"\\/')
        ]
        keywords = list(query.keywords)
        operator = query.operator
        fields: list[str] = []  # values AND-ed with the rest: whole terms in the text
        if literals and (operator == "AND" or not keywords):
            keywords += literals
            operator = "AND"
            fields = literals
        self.scanner: Scanner | None = None
        self.terms: TermPlan | None = None  # what the token index can decide
        if keywords or query.regex is not None:
            key = TextKey(
                tuple(keywords),
                operator,
                query.regex,
                query.regex_max_mem,
                tuple(query.keywords),
                tuple(fields),
            )
            made = texts.get(key, stats) if texts is not None else None
            self.scanner, self.terms = made or text_plan(key, stats)
        self.confirm: Callable[[Event], bool] | None = None
        if query.fields or confirm_services:
            self.confirm = query.matcher()

    @property
    def structured_only(self) -> bool:
        return self.scanner is None and self.confirm is None


class StoreReader:
    """Snapshots of the store's segments for queries; thread-safe."""

    def __init__(self, directory: Path, *, threads: int = 2) -> None:
        self.directory = directory
        self.threads = threads
        self._lock = threading.Lock()
        self._cache: dict[int, CachedIndex] = {}
        self._services = ServiceCodes()
        self._services_stamp: tuple[int, int] | None = None
        self._scans = ScanPool(threads)
        self._stats: ByteStats | None = None
        self._stats_at = 0.0
        self._terms = TermViews()
        self.blooms = SegmentBlooms()  # segments' whole-term filters: lookups skip most
        self._texts = TextPlans()

    def close(self) -> None:
        self._scans.close()

    # ---- snapshots -----------------------------------------------------------------
    def snapshot(self, high_water: int) -> tuple[list[SegmentView], ServiceCodes]:
        """The indexed segments cut at `high_water` (oldest first), and the services."""
        with self._lock:
            refs = [r for r in list_segments(self.directory) if not r.compressed]
            present = {r.first_id for r in refs}
            for gone in set(self._cache) - present:
                del self._cache[gone]  # retention: open mmaps stay valid for their users
            bases = {index_base(self.directory, first) for first in present}
            self._terms.forget(bases)
            self.blooms.forget(bases)
            segments = []
            head = max((r.first_id for r in refs if r.first_id <= high_water), default=None)
            for ref in refs:
                if ref.first_id > high_water:
                    break
                # The segment holding S must be read up to S: its last chunk may
                # have been extended in place (the chunk file keeps its size).
                need = high_water if ref.first_id == head else None
                cached = self._refresh(ref.first_id, ref.path, need)
                if cached is None:
                    continue
                seg = cut_at_high_water(ref.first_id, cached, high_water)
                if seg is not None:
                    segments.append(seg)
            # After the index: a code in a row is always in the dictionary read now.
            services = self._load_services()
        return segments, services

    def _refresh(self, first_id: int, path: Path, need: int | None = None) -> CachedIndex | None:
        """The segment's index, read again when it grew or does not reach `need`."""
        base = index_base(self.directory, first_id)
        try:
            size = os.stat(index_file(base, CHUNKS_SUFFIX)).st_size
        except FileNotFoundError:
            return None  # not indexed yet
        cached = self._cache.get(first_id)
        if (
            cached is not None
            and cached.chunks_size == size
            and (_reaches(cached.index, need) or cached.read_for == need)
        ):
            cached.path = path
            return cached
        for _ in range(3):
            try:
                index = load_index(base)
            except FileNotFoundError:
                return None  # retention deleted it since the listing
            # A record read while the indexer overwrote it fails its CRC: read again.
            if _reaches(index, need) or not index.torn_chunk_bytes:
                break
        if not len(index.chunks):
            return None
        buf = cached.buf if cached is not None else b""
        if len(buf) < index.byte_end:
            try:
                buf = _map(path)
            except FileNotFoundError:
                return None
            if len(buf) < index.byte_end:
                return None  # an index ahead of its text: not this segment's (never kept)
        # A torn read (the indexer overwrote the last record meanwhile) is read again.
        read_for = need if need is not None and not index.torn_chunk_bytes else 0
        cached = CachedIndex(path, size, index, buf, read_for)
        self._cache[first_id] = cached
        return cached

    def _load_services(self) -> ServiceCodes:
        path = index_dir(self.directory) / SERVICES_NAME
        try:
            st = path.stat()
        except FileNotFoundError:
            return self._services
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._services_stamp:
            self._services = ServiceCodes.from_json(path.read_bytes())
            self._services_stamp = stamp
        return self._services

    def byte_stats(self, segments: list[SegmentView]) -> ByteStats | None:
        """Byte-pair statistics of recent text, so a query's scanner picks its rarest
        literal (one chunk of the newest segment, refreshed every few minutes)."""
        now = time.monotonic()
        with self._lock:
            if self._stats is not None and now - self._stats_at < _STATS_TTL_S:
                return self._stats
            if not segments:
                return None
            seg = segments[-1]
            # The largest of the newest chunks: the very last one may be a few
            # events (an idle tail), and the estimates would follow their words.
            tail = seg.index.chunks[-3:]
            last = tail[int(np.argmax(tail["byte_end"] - tail["byte_start"]))]
            sample = bytes(seg.buf[int(last["byte_start"]) : int(last["byte_end"])])
            self._stats, self._stats_at = ByteStats(sample), now
            return self._stats

    # ---- queries -----------------------------------------------------------------
    def search(
        self,
        query: Query,
        high_water: int,
        *,
        limit: int,
        max_count: int,
        deadline: float,
        max_scan: int,
        seed: tuple[F64, I64] | None = None,
    ) -> StoreResult:
        """The first `limit` matches by event time (ties by id) in the query's order,
        and the matches counted, at least up to `max_count` (0: rows only).

        `seed`: (event times, ids) of rows another source holds (memory's); they
        compete for the `limit` places and only the store's rows that win one
        are returned, so the store stops as soon as it cannot beat them.
        """
        segments, services = self.snapshot(high_water)
        plan = Plan(query, services, self.byte_stats(segments), self._texts)
        result = StoreResult()
        if plan.empty or not segments:
            return result
        newest_first = query.order == "desc"
        top = TopRows.empty(limit, newest_first)
        if seed is not None:
            top.add(seed[0], seed[1], -1, np.zeros(len(seed[0]), np.int64))
        walk = self.walk(plan, segments, newest_first)
        budget = ScanBudget(max_scan)
        where = plan.where
        filtered = where.narrows
        apart = False  # receive-timed rows taken apart (store/received_first.py)
        # Growing groups exist to stop early; when the whole store holds no more
        # events than there are matches to count, and counting means reading
        # rows (a text test), all of it is one step. Structured filters count
        # from the summaries, so their rows are read only while they may win.
        whole = max_count > walk.stored and not plan.structured_only
        size = len(walk.order) if whole else 1
        at = 0
        while at < len(walk.order):
            first = walk.order[at : at + 1]
            if (
                newest_first
                and not apart
                and top.full
                and result.count >= max_count
                and not top.can_take(walk.own_keys[first], walk.best_ids[first])[0]
            ):
                # Only receive-timed events may still beat the rows held.
                apart = take_received_first(
                    plan.scanner,
                    where.rows_mask if filtered else None,
                    plan.confirm,
                    confirmed,
                    segments,
                    walk,
                    at,
                    top,
                    deadline,
                    budget,
                )
                first = walk.order[at : at + 1]
            if not top.can_take(walk.keys[first], walk.best_ids[first])[0]:
                # Rows settled: no chunk left can beat them. Count what is missing.
                if result.count >= max_count:
                    result.capped = True
                    break
                rest = walk.order[at:]
                if plan.structured_only and (walk.known[rest] >= 0).all():
                    result.count += int(walk.known[rest].sum())  # summaries: no row read
                    break
            # Fewer, larger scans (search.group_size); a chunk that cannot beat the rows
            # held at the group's start is read only for the count (below).
            need = max(limit - len(top.ts), max_count - result.count)
            group = walk.order[at : at + group_size(size, at, result.count, need)]
            at += len(group)
            size = min(len(group) * 4, _MAX_GROUP)
            if time.monotonic() >= deadline:
                raise time_limit_error()
            takes = top.can_take(walk.keys[group], walk.best_ids[group])
            need_count = result.count < max_count
            for part in np.unique(walk.parts[group]).tolist():
                mine = walk.parts[group] == part
                chunks, take = walk.chunks[group][mine], takes[mine]
                # A chunk is read if it may hold a row of the answer, or for the
                # count while one is needed (with structured filters only, its
                # summary gives the count unless the rows decide).
                read = take | need_count
                if plan.structured_only and need_count:
                    known = walk.known[group][mine]
                    summed = ~take & (known >= 0)
                    result.count += int(known[summed].sum())
                    read &= ~summed
                chunks = np.sort(chunks[read])
                if not len(chunks):
                    continue
                seg = segments[part]
                rows = self.match_rows(plan, seg, chunks.tolist(), deadline, budget)
                if plan.confirm is not None:
                    rows = confirmed(plan.confirm, seg, rows, deadline)
                result.count += len(rows)
                index = seg.index
                if apart:  # its receive-timed rows were offered first
                    rows = rows[index.cols["own_ts"][rows] != 0]
                top.add(index.cols["ts"][rows], ids_of_rows(index, rows), part, rows)
        result.rows = top_events(segments, top)
        result.scanned = budget.scanned
        return result

    def walk(self, plan: Plan, segments: list[SegmentView], newest_first: bool) -> Walk:
        """The query's chunks in walk order; a lookup's whole terms (field values)
        are asked of the bloom filters first."""
        prune = None
        if plan.terms is not None and plan.terms.wholes:
            prune = partial(self._may_hold, plan.terms, segments)
        return Walk(plan.where, segments, newest_first, prune)

    def _may_hold(self, terms: TermPlan, segments: list[SegmentView], n: int, chunks: I64) -> B1:
        """Which of segment n's `chunks` may hold the plan's whole terms (field values):
        before the walk, so that a lookup visits only the segments that may hold its
        value. The segment's own filter first (store/segment_bloom.py: a few byte
        reads), then, where it may hold them or has none, its chunks' filters."""
        seg = segments[n]
        base = index_base(self.directory, seg.first_id)
        if self.blooms.rules_out(base, terms.whole_hashes):
            return np.zeros(len(chunks), np.bool_)
        view = self._terms.get(base, seg.index.chunks)
        if view is None:
            return np.ones(len(chunks), np.bool_)
        return terms.may_hold_wholes(view[0], view[1], chunks)

    def match_rows(
        self, plan: Plan, seg: SegmentView, group: list[int], deadline: float, budget: ScanBudget
    ) -> I64:
        """The rows of `group` (chunk numbers, ascending) that match, ascending; the
        chunks read are charged to `budget` before they are read."""
        index = seg.index
        cols = index.cols
        chunks = index.chunks
        where = plan.where
        if plan.scanner is None:
            budget.charge(int(chunks["count"][group].sum()))
            return rows_in_chunks(index, group, where)
        answered: list[I64] = []
        decided = False  # the token index took chunks out of the group
        view = None
        base = index_base(self.directory, seg.first_id)
        if plan.terms is not None or plan.scanner.confirm == "unplain":
            view = self._terms.get(base, chunks)
        terms = plan.terms
        if terms is not None and view is not None and base not in terms.fruitless:
            pool, threads = self._scans.executor, self._scans.threads
            absent = terms.absent_pieces(partial(self.blooms.lacks, base))
            split = terms.decide(
                view[0], view[1], chunks["row_start"], group, pool, threads, absent
            )
            decided = len(split.scan) < len(group)
            indexed = all(c in view[1] for c in group)  # new chunks may wait for theirs
            if not decided and indexed and len(group) >= _LEARN_FROM:
                terms.fruitless.add(base)
            group, answered = split.scan, split.rows
        kept = np.zeros(0, np.int64)
        events = int(chunks["count"][group].sum())
        few = few_rows(index, group, where, events // _FEW_ROWS)
        if few is not None:
            # Few rows of the chunks left pass the structured filter (a rare level,
            # events timed by their receive time in a recent window): only their
            # lines are read, gathered and scanned once.
            budget.charge(len(few))
            kept = matching_rows(plan.scanner, seg.buf, index, few, deadline)
        elif group:
            budget.charge(events)
            ranges = [(int(chunks[i]["byte_start"]), int(chunks[i]["byte_end"])) for i in group]
            if plan.scanner.confirm is not None and len(index.blocks):
                plain = None
                if plan.scanner.confirm == "unplain" and view is not None:
                    files, record_of = view
                    plain = partial(plain_rows, files, record_of, chunks)
                rows = [
                    (int(chunks[i]["row_start"]), int(chunks[i]["row_start"] + chunks[i]["count"]))
                    for i in group
                ]
                kept = self._scans.bulk(plan.scanner, seg, ranges, rows, deadline, plain)
            else:
                found = self._scans.scan(plan.scanner, seg.buf, ranges, deadline)
                lo = int(chunks[group[0]]["row_start"])
                hi = int(chunks[group[-1]]["row_start"]) + int(chunks[group[-1]]["count"])
                kept = rows_at_offsets(cols, lo, hi, found)
            if decided:
                # Spans join chunks a few bytes apart: a chunk between two scanned
                # ones may be one the token index answered or ruled out.
                kept = kept[in_chunks(kept, chunks, group)]
        if answered:
            kept = np.sort(np.concatenate([kept, *answered]))
        if where.narrows:
            kept = kept[where.rows_mask(cols[kept])]
        return kept


def confirmed(
    confirm: Callable[[Event], bool], seg: SegmentView, rows: I64, deadline: float
) -> I64:
    """The rows whose parsed event passes `confirm` (field=value tests)."""
    keep = np.zeros(len(rows), bool)
    for n, event in enumerate(events_at_rows(seg, rows)):
        # Each: a parse and maybe a regex (milliseconds on a long event).
        if time.monotonic() >= deadline:
            raise time_limit_error()
        keep[n] = confirm(event)
    return rows[keep]


def _map(path: Path) -> mmap.mmap | bytes:
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return b""
        return mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ)


def _reaches(index: SegmentIndex, need: int | None) -> bool:
    return need is None or (index.last_id is not None and index.last_id >= need)
