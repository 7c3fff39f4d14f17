"""Text search over stored segments: keywords and regexes with per-event semantics.

The store's text is the file sink's raw block payloads (segments/blocks.py): one
event per line, escaped (`\\` -> `\\\\`, newline -> `\\n`, CR -> `\\r`, a
leading `#` -> `\\#`). A `Scanner` compiles the text part of a query (keywords
with AND/OR, an optional regex) once and answers it over byte ranges of such
payloads (never over block header lines) with the semantics of the query model
(query/model.py): a keyword is a case-sensitive substring of the event body, a
regex an RE2 search over the body, `body = text.decode("utf-8", "replace")`.
Only raw-mode (`r`) payloads can be scanned; JSON-mode blocks are not escaped
text and must be filtered after decoding.

Strategy (docs/store-engine.md):

- Hyperscan scans for one *necessary condition* of the query: a piece of one
  keyword (AND), the pieces of all keywords (OR), a literal every regex match
  must contain, or the whole regex translated to the escaped layout
  (store/patterns.py). The condition with the fewest expected candidates per
  byte wins (a byte-pair histogram of a sample chunk estimates that), because
  the literal chosen matters more than the engine.
- Each candidate line is then confirmed exactly (store/text_match.py): an
  escaped-bytes comparison where that is provably exact, otherwise the line is
  decoded and the query's own tests run on the body (`in`, RE2). So every path
  returns exactly what a brute-force pass over decoded events returns; the
  translation only has to match a *superset* of the lines, never the exact set.
- A regex the translator cannot vouch for (flags, lookarounds, anything
  unparsed) falls back to RE2 over every decoded line: always correct, slower.
  `Scanner.path` says which strategy runs, for the query's stats.
"""

from __future__ import annotations

import contextlib
import mmap
import threading
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import hyperscan
import numpy as np
import numpy.typing as npt

from logcaster.exceptions import QueryLimitError, QuerySyntaxError
from logcaster.query.model import DEFAULT_REGEX_MAX_MEM, compile_regex
from logcaster.store.byte_stats import ByteStats
from logcaster.store.hs_reports import LazyReports
from logcaster.store.patterns import (
    REPLACEMENT,
    Unsupported,
    escape_text,
    escaped_re2,
    exact_on_plain,
    translate_regex,
)
from logcaster.store.text_match import TextTest, stored_line_text, valid_utf8
from logcaster.store.word_finder import hs_literal

# What can be scanned: the mmap of a segment, or bytes (tests, small tails).
Buffer = bytes | mmap.mmap
Range = tuple[int, int]
ScanPath = Literal["all-lines", "literal", "literals", "hyperscan-regex", "re2-fallback"]
Stop = Literal["limit", "deadline", "cancelled"]
_OnMatch = Callable[[int, int, int, int, object], None]

_MIB = 1 << 20
# Rough costs on the project VM (the engine study, docs/store-engine.md): Hyperscan
# over one MiB for a single literal, a multi-literal set and a full regex; and
# the Python cost of one candidate line (find its bounds, decode, confirm).
_MS_PER_MIB = {"literal": 0.15, "literals": 0.32, "hyperscan-regex": 0.40}
_MS_PER_CANDIDATE = 0.0015
# A candidate of a literal a regex stands behind: decoded and RE2 confirmed (~4 us), where
# the regex's own scan reports a plain line's match without Python work (bulk_rows.py).
_MS_PER_RE2_CANDIDATE = 0.004
# Bytes that follow an escape backslash; a keyword starting with one can match
# in the middle of an escape (`n` inside `\\n`), so its escaped-bytes match
# alone does not prove a body match.
_MID_ESCAPE = frozenset(b"\\nr#")


@dataclass(frozen=True, slots=True)
class _Literal:
    """One literal Hyperscan scans for: `escaped` is confirmed ending at the match."""

    escaped: bytes
    piece: bytes  # suffix of `escaped` given to Hyperscan
    exact: bool  # escaped match alone proves the query (no decode needed)


@dataclass(slots=True)
class ScanResult:
    """Matching lines of a scan, in scan order (ascending, or newest first)."""

    count: int = 0
    offsets: list[int] = field(default_factory=list)  # line starts within the buffer
    stopped: Stop | None = None  # why the scan ended before all ranges were done
    ranges_scanned: int = 0
    candidates: int = 0  # lines confirmed in Python (a cost figure for stats)


class _PastDeadline(Exception):
    """The deadline passed inside one range (scan_range): its partial result is dropped."""


class Scanner(TextTest):
    """The text tests of one query, compiled for scanning escaped payload bytes.

    `keywords` combine with `operator`; `regex`, if given, must also match
    (Query.matcher's semantics). `stats`, from a sample of the data, picks the
    cheapest necessary condition; without it a static preference is used.
    Thread-safe: each thread scanning gets its own Hyperscan scratch.
    """

    def __init__(
        self,
        keywords: Sequence[str] = (),
        operator: Literal["AND", "OR"] = "AND",
        regex: str | None = None,
        *,
        stats: ByteStats | None = None,
        max_mem: int = DEFAULT_REGEX_MAX_MEM,
    ) -> None:
        super().__init__(keywords, operator, regex, max_mem=max_mem)
        # The query's regex on escaped lines, exact for valid UTF-8 (see escaped_re2).
        self._escaped_search: Callable[[bytes], object] | None = None
        if regex is not None and not any(self.keywords):
            with contextlib.suppress(Unsupported, QuerySyntaxError, QueryLimitError):
                self._escaped_search = compile_regex(escaped_re2(regex), max_mem).search
        self.regex_path: str | None = None  # how the regex part could be searched
        self._db: hyperscan.Database | None = None
        self.reports = LazyReports([])  # _db's expressions for the C collector (hits)
        self._lits: list[_Literal] = []
        self._exact = False
        self._local = threading.local()
        # Its scans report densely: one scan thread, not two (store/scan_pool.py).
        self.dense = False
        self.path: ScanPath = self._plan(stats)

    # ---- planning --------------------------------------------------------------
    def _plan(self, stats: ByteStats | None) -> ScanPath:
        options: list[tuple[float, ScanPath, list[str] | bytes]] = []

        def literal_cost(lits: list[str]) -> float:
            kind = "literal" if len(lits) == 1 else "literals"
            if stats is None:
                # No sample: prefer exact keyword tests, then long literals.
                return 1.0 + (1.0 if kind == "literals" else 0.0) - min(map(len, lits)) / 1000
            cands = sum(stats.estimate(escape_text(x.encode())) for x in lits)
            # A regex behind the literal is confirmed by RE2 on each candidate line.
            per = _MS_PER_RE2_CANDIDATE if self._search is not None else _MS_PER_CANDIDATE
            return _MS_PER_MIB[kind] * stats.size / _MIB + cands * per

        if self._words:
            if self._or:
                if all(REPLACEMENT not in w for w in self._words):
                    options.append((literal_cost(list(self._words)), "literals", list(self._words)))
            else:
                options.extend(
                    (literal_cost([w]), "literal", [w]) for w in self._words if REPLACEMENT not in w
                )
        if self.regex is not None:
            try:
                expr, required = translate_regex(self.regex)
            except Unsupported as exc:
                self.regex_path = f"re2-fallback ({exc})"
            else:
                self.regex_path = "hyperscan-regex"
                for lits in required:
                    kind: ScanPath = "literal" if len(lits) == 1 else "literals"
                    # Keywords come first on ties: they can be exact.
                    options.append((literal_cost(lits) + 1e-6, kind, lits))
                if stats is None:
                    regex_cost = 3.0
                else:
                    regex_cost = _MS_PER_MIB["hyperscan-regex"] * stats.size / _MIB
                options.append((regex_cost, "hyperscan-regex", expr))
        options.sort(key=lambda o: o[0])
        for _, kind, what in options:
            if isinstance(what, bytes):
                if self._compile([what]):
                    return "hyperscan-regex"
                self.regex_path = "re2-fallback (Hyperscan rejected the translation)"
                continue
            chosen = [self._literal(w, stats) for w in what]
            if self._compile([hs_literal(x.piece) for x in chosen]):
                self._lits = chosen
                # The escaped match is the whole answer only for keywords alone.
                self._exact = self._search is None and all(x.exact for x in chosen)
                return kind
        if not self._words and self._search is None:
            return "all-lines"  # e.g. only empty keywords: every event matches
        return "re2-fallback"

    def _literal(self, word: str, stats: ByteStats | None) -> _Literal:
        escaped = escape_text(word.encode())
        k = stats.rare_suffix(escaped) if stats is not None else 0
        # A keyword that cannot start inside an escape is matched exactly by its
        # escaped bytes: the match starts on an escape boundary, and from there
        # the escapes are prefix-free (docs/store-engine.md, "Searching escaped
        # text"). Only a lone keyword without other tests can skip decoding.
        exact = escaped[0] not in _MID_ESCAPE and (self.operator == "OR" or len(self._words) == 1)
        return _Literal(escaped, escaped[k:], exact)

    def _compile(self, exprs: list[bytes]) -> bool:
        db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        try:
            db.compile(
                expressions=exprs,
                ids=list(range(len(exprs))),
                flags=[hyperscan.HS_FLAG_MULTILINE] * len(exprs),
            )
        except hyperscan.error:
            return False
        self._db = db
        self.reports = LazyReports(exprs)
        return True

    # ---- matching ----------------------------------------------------------------
    def matches_line(self, line: bytes) -> bool:
        """The query's text tests on one escaped payload line (without its newline).

        On valid UTF-8 the tests run on the bytes: a substring of the bytes is
        one of the str and RE2 reads UTF-8 itself, so the result is the body's,
        without the str round trip (google-re2 maps every str offset: ~40 us
        on a long trace event, against ~2 us on bytes).
        """
        escaped = self._escaped_search
        if escaped is not None and (line.isascii() or valid_utf8(line)):
            return escaped(line) is not None
        return self.matches_text(stored_line_text(line))

    def _scratch(self) -> hyperscan.Scratch:
        scratch: hyperscan.Scratch | None = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = hyperscan.Scratch(self._db)
            self._local.scratch = scratch
        return scratch

    def scan_range(
        self, buf: Buffer, lo: int, hi: int, deadline: float | None = None
    ) -> tuple[list[int], int]:
        """Start offsets (ascending) of matching lines in buf[lo:hi], and candidates seen.

        [lo, hi) must hold whole payload lines, each ending in a newline.
        Raises _PastDeadline once `deadline` (time.monotonic()) has passed.
        """
        if self.path == "all-lines":
            return _line_starts(buf, lo, hi), 0
        clock = time.monotonic
        if self._db is None:
            starts = _line_starts(buf, lo, hi)
            test = self.matches_line
            matched: list[int] = []
            for s in starts:
                # A costly regex can take milliseconds per line (a range: seconds);
                # a clock read is ~50 ns against a microsecond or more per line.
                if deadline is not None and clock() >= deadline:
                    raise _PastDeadline
                if test(buf[s : buf.find(b"\n", s)]):
                    matched.append(s)
            return matched, len(starts)
        out: list[int] = []
        append = out.append
        find, rfind = buf.find, buf.rfind
        line_end = -1  # absolute end of the last line already decided
        cands = 0
        test = self.matches_line
        lits = self._lits
        exact = self._exact

        if lits:

            def on_match(i: int, _from: int, to: int, _flags: int, _ctx: object) -> None:
                nonlocal line_end, cands
                end = lo + to
                if end <= line_end:
                    return None
                lit = lits[i].escaped
                a = end - len(lit)
                # The piece is a suffix: the whole literal must end here too.
                if a < lo or buf[a:end] != lit:
                    return None
                nl = find(b"\n", end)
                start = rfind(b"\n", lo, a) + 1 or lo
                line_end = nl
                if exact:
                    append(start)
                    return None
                cands += 1
                if deadline is not None and clock() >= deadline:
                    raise _PastDeadline  # out of the Hyperscan scan, which stops
                if test(buf[start:nl]):
                    append(start)
                return None

        else:

            def on_match(i: int, _from: int, to: int, _flags: int, _ctx: object) -> None:
                nonlocal line_end, cands
                # Its last byte is on the line (or is the line's newline, for a
                # translated `$`); no match is empty (translate_regex).
                last = lo + to - 1
                if last <= line_end:
                    return None
                nl = find(b"\n", last)
                start = rfind(b"\n", lo, last) + 1 or lo
                line_end = nl
                cands += 1
                if deadline is not None and clock() >= deadline:
                    raise _PastDeadline
                if test(buf[start:nl]):
                    append(start)
                return None

        with memoryview(buf) as view:
            # The stubs say AnyStr; the extension takes any contiguous buffer
            # (the prototype scanned mmap slices without a copy).
            self._db_scan(view[lo:hi], on_match)
        return out, cands

    @property
    def confirm(self) -> Literal["none", "unplain", "all"] | None:
        """Which lines a bulk scan (`hits`) must confirm with `matches_line`: none
        (an exact keyword), those not plain (not ASCII or holding a backslash: a
        regex alone, without word boundaries, whose translation is the pattern
        itself on plain lines), or all. None: no bulk scan for this path."""
        if self.path in ("literal", "literals"):
            return "none" if self._exact else "all"
        if self.path == "hyperscan-regex":
            assert self.regex is not None
            return "unplain" if not self._words and exact_on_plain(self.regex) else "all"
        return None

    def hits(self, buf: Buffer, lo: int, hi: int) -> npt.NDArray[np.int64]:
        """Every Hyperscan report in buf[lo:hi], no per-line work: `id << 40 | end`
        (end absolute; for a literal, the end of its piece; store/bulk_rows.py), in C
        where built (store/hs_reports.py), else by a callback holding the GIL."""
        reports = self.reports.get()
        if reports is not None:
            return np.frombuffer(reports.scan(buf, lo, hi), np.int64)
        out = array("q")
        append = out.append
        many = len(self._lits) > 1  # else the one expression's id is 0

        def on_match(i: int, _from: int, to: int, _flags: int, _ctx: object) -> None:
            append(i << 40 | to if many else to)

        with memoryview(buf) as view:
            self._db_scan(view[lo:hi], on_match)
        return np.frombuffer(out, np.int64) + lo if out else np.zeros(0, np.int64)

    def hits_in_ranges(
        self, buf: Buffer, ranges: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.int64] | None:
        """`hits` over each (lo, hi) pair of `ranges` alone, scanned in place; None
        unless collected in C and a bulk scan can confirm them (`confirm`)."""
        reports = self.reports.get()
        if reports is None or self.confirm is None:
            return None
        return np.frombuffer(reports.scan_ranges(buf, ranges.tobytes()), np.int64)

    @property
    def literals(self) -> list[bytes]:
        """The escaped literal of each Hyperscan id (literal paths)."""
        return [x.escaped for x in self._lits]

    def _db_scan(self, data: memoryview, on_match: _OnMatch) -> None:
        assert self._db is not None
        try:
            self._db.scan(
                data,  # type: ignore[type-var]
                match_event_handler=on_match,
                scratch=self._scratch(),
            )
        finally:
            data.release()

    def scan(
        self,
        buf: Buffer,
        ranges: Sequence[Range],
        *,
        limit: int | None = None,
        newest_first: bool = False,
        threads: int = 1,
        deadline: float | None = None,
        cancel: threading.Event | None = None,
    ) -> ScanResult:
        """Matching lines over `ranges` (payload byte ranges, oldest first).

        newest_first: ranges are taken last to first and lines within each
        range in descending offset order. limit: stop after that many matching
        lines (in scan order). deadline (time.monotonic()) and cancel are
        checked between ranges, and the deadline also within a range as RE2
        confirms lines; a scan stopped by them returns what it found
        with `stopped` set. threads > 1 scans ranges in parallel (Hyperscan
        releases the GIL) and returns the same result as one thread.
        """
        order = list(reversed(ranges)) if newest_first else list(ranges)
        result = ScanResult()
        if limit is not None and limit <= 0:
            result.stopped = "limit"
            return result
        parts: list[list[int] | None] = [None] * len(order)

        def should_stop() -> Stop | None:
            if cancel is not None and cancel.is_set():
                return "cancelled"
            if deadline is not None and time.monotonic() >= deadline:
                return "deadline"
            return None

        lock = threading.Lock()
        state = {"next": 0, "done_prefix": 0, "found_prefix": 0, "cands": 0}
        stop: list[Stop] = []
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                work()
            except BaseException as exc:  # re-raised in the caller's thread
                with lock:
                    errors.append(exc)
                    stop.append("cancelled")

        def work() -> None:
            while True:
                with lock:
                    if stop or state["next"] >= len(order):
                        return
                    why = should_stop()
                    if why is not None:
                        stop.append(why)
                        return
                    idx = state["next"]
                    state["next"] = idx + 1
                lo, hi = order[idx]
                try:
                    starts, cands = self.scan_range(buf, lo, hi, deadline)
                except _PastDeadline:
                    with lock:
                        stop.append("deadline")  # this range stays None: not in the prefix
                    return
                if newest_first:
                    starts.reverse()
                with lock:
                    parts[idx] = starts
                    state["cands"] += cands
                    # Advance the finished prefix; stop once it holds `limit`.
                    while state["done_prefix"] < len(order):
                        done = parts[state["done_prefix"]]
                        if done is None:
                            break
                        state["found_prefix"] += len(done)
                        state["done_prefix"] += 1
                    if limit is not None and state["found_prefix"] >= limit and not stop:
                        stop.append("limit")

        if threads <= 1 or len(order) <= 1:
            worker()
        else:
            pool = [threading.Thread(target=worker) for _ in range(min(threads, len(order)))]
            for t in pool:
                t.start()
            for t in pool:
                t.join()
        offsets = result.offsets
        for part in parts:
            if part is None:
                # Later ranges may be done (parallel), but a result is always
                # a prefix of the scan order, so stop at the first gap.
                break
            result.ranges_scanned += 1
            offsets.extend(part)
        if errors:
            raise errors[0]
        if limit is not None and len(offsets) >= limit:
            # Cut: more matches may exist past the limit (count is a lower bound).
            if len(offsets) > limit or result.ranges_scanned < len(order):
                result.stopped = "limit"
            del offsets[limit:]
        elif stop and result.ranges_scanned < len(order):
            result.stopped = stop[0]
        result.count = len(offsets)
        result.candidates = state["cands"]
        return result


def _line_starts(buf: Buffer, lo: int, hi: int) -> list[int]:
    starts: list[int] = []
    s = lo
    find = buf.find
    while s < hi:
        starts.append(s)
        s = find(b"\n", s, hi) + 1
        if s == 0:
            break
    return starts
