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

Strategy (docs/store-engine.md, bench/engines/segments/RESULTS.md):

- Hyperscan scans for one *necessary condition* of the query: a piece of one
  keyword (AND), the pieces of all keywords (OR), a literal every regex match
  must contain, or the whole regex translated to the escaped layout. The
  condition with the fewest expected candidates per byte wins (a byte-pair
  histogram of a sample chunk estimates that), because the literal chosen
  matters more than the engine.
- Each candidate line is then confirmed exactly: an escaped-bytes comparison
  where that is provably exact, otherwise the line is decoded and the query's
  own tests run on the body (`in`, RE2). So every path returns exactly what a
  brute-force pass over decoded events returns; the translation only has to
  match a *superset* of the lines, never the exact set.
- A regex the translator cannot vouch for (flags, lookarounds, anything
  unparsed) falls back to RE2 over every decoded line: always correct, slower.
  `Scanner.path` says which strategy runs, for the query's stats.
"""

from __future__ import annotations

import contextlib
import mmap
import re
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, AnyStr, Literal

import hyperscan
import numpy as np
import numpy.typing as npt

from logcaster.exceptions import QueryLimitError, QuerySyntaxError
from logcaster.query.model import DEFAULT_REGEX_MAX_MEM, compile_regex
from logcaster.segments.blocks import _unescape_line

if TYPE_CHECKING:
    # typeshed types the parser under its old names; importing those at run
    # time warns (deprecated since 3.11), so run time uses the re package's own.
    import sre_constants as sre_c
    import sre_parse
else:
    import re._constants as sre_c
    import re._parser as sre_parse

# What can be scanned: the mmap of a segment, or bytes (tests, small tails).
Buffer = bytes | mmap.mmap
Range = tuple[int, int]
ScanPath = Literal["all-lines", "literal", "literals", "hyperscan-regex", "re2-fallback"]
Stop = Literal["limit", "deadline", "cancelled"]
_OnMatch = Callable[[int, int, int, int, object], None]

_MIB = 1 << 20
# Rough costs on the project VM (RESULTS.md "Where the time goes"): Hyperscan
# over one MiB for a single literal, a multi-literal set and a full regex; and
# the Python cost of one candidate line (find its bounds, decode, confirm).
_MS_PER_MIB = {"literal": 0.15, "literals": 0.32, "hyperscan-regex": 0.40}
_MS_PER_CANDIDATE = 0.0015
# A literal piece shorter than this gives Hyperscan's literal engine little to
# work with; a suffix is only preferred while it keeps at least this many bytes.
_MIN_PIECE = 3
# Bytes that follow an escape backslash; a keyword starting with one can match
# in the middle of an escape (`n` inside `\\n`), so its escaped-bytes match
# alone does not prove a body match.
_MID_ESCAPE = frozenset(b"\\nr#")
_REPLACEMENT = "\ufffd"


def escape_text(text: bytes) -> bytes:
    """`text` escaped like a raw payload line's inner bytes (no leading-`#` rule)."""
    return text.replace(b"\\", b"\\\\").replace(b"\n", b"\\n").replace(b"\r", b"\\r")


def decode_line(line: bytes) -> str:
    """The event body of one escaped payload line (without its newline)."""
    return _unescape(line).decode("utf-8", "replace")


def _unescape(line: bytes) -> bytes:
    if b"\\" not in line:
        return line
    if b"\\\\" not in line and b"\\r" not in line and not line.startswith(b"\\#"):
        # Only `\n` escapes (a multi-line event, the common case): one C-level
        # replace instead of blocks._unescape_line's split (13 us -> 1 us on a
        # 1.8 KB trace event).
        return line.replace(b"\\n", b"\n")
    return _unescape_line(line)


def _valid_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


class ByteStats:
    """Byte-pair counts of a sample of stored payload (one chunk is enough).

    Estimates how many candidates a literal will produce per byte scanned; built
    once per store or segment and shared by every query's Scanner.
    """

    def __init__(self, sample: bytes) -> None:
        a = np.frombuffer(sample, np.uint8).astype(np.int32)
        self.size = max(len(sample), 1)
        self.pairs: npt.NDArray[np.int64] = np.bincount(
            a[:-1] * 256 + a[1:], minlength=65536
        ).astype(np.int64)

    def pair(self, lit: bytes, i: int) -> int:
        if i + 1 < len(lit):
            return int(self.pairs[lit[i] * 256 + lit[i + 1]])
        return int(self.pairs[lit[i] * 256 : lit[i] * 256 + 256].sum())

    def estimate(self, lit: bytes) -> int:
        """An upper bound of the literal's occurrences in the sample: its rarest pair's."""
        return min(self.pair(lit, i) for i in range(len(lit)))

    def rare_suffix(self, lit: bytes) -> int:
        """Start of the suffix (>= _MIN_PIECE bytes) whose first byte pair is rarest.

        Hyperscan's literal engine keys on a short prefix of each literal; a
        common prefix (`timeout` shares `time` with `"timestamp"` on every JSON
        line) means many false candidates, a rare one few. The suffix ends where
        the literal ends, so the callback finds the literal's start without SOM.
        """
        last = max(0, len(lit) - _MIN_PIECE)
        return min(range(last + 1), key=lambda i: (self.pair(lit, i), i))


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


class Unsupported(ValueError):
    """A regex the Hyperscan translator does not handle (the RE2 fallback does)."""


class TextTest:
    """A query's keyword/regex tests on one event's text (raw bytes or decoded body),
    with Query.matcher's semantics; no Hyperscan database (see Scanner)."""

    def __init__(
        self,
        keywords: Sequence[str] = (),
        operator: Literal["AND", "OR"] = "AND",
        regex: str | None = None,
        *,
        max_mem: int = DEFAULT_REGEX_MAX_MEM,
    ) -> None:
        if operator not in ("AND", "OR"):
            raise ValueError(f"operator must be AND or OR, not {operator!r}")
        self.keywords = tuple(keywords)
        self.operator = operator
        self.regex = regex
        self._search = compile_regex(regex, max_mem).search if regex is not None else None
        words = self.keywords
        # "" is in every body: it drops out of an AND and makes an OR always true.
        if operator == "AND":
            words = tuple(w for w in words if w)
        elif "" in words:
            words = ()
        self._words = words
        self._words_b = tuple(w.encode() for w in words)
        self._or = operator == "OR" and len(words) > 0

    def matches_text(self, text: bytes) -> bool:
        """The query's text tests on one event's raw text (the memory buffer's form)."""
        if not text.isascii():
            try:
                text.decode()
            except UnicodeDecodeError:
                return self.matches_body(text.decode("utf-8", "replace"))
        return self._passes(text, self._words_b)

    def matches_body(self, body: str) -> bool:
        """The query's text tests on one decoded body (Query.matcher's semantics)."""
        return self._passes(body, self._words)

    def _passes(self, text: AnyStr, words: tuple[AnyStr, ...]) -> bool:
        """Keywords (AND/OR) then the regex, on bytes or str alike."""
        if words:
            found = (w in text for w in words)
            if not (any(found) if self._or else all(found)):
                return False
        return self._search is None or self._search(text) is not None


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
        self._lits: list[_Literal] = []
        self._exact = False
        self._local = threading.local()
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
            return _MS_PER_MIB[kind] * stats.size / _MIB + cands * _MS_PER_CANDIDATE

        if self._words:
            if self._or:
                if all(_REPLACEMENT not in w for w in self._words):
                    options.append((literal_cost(list(self._words)), "literals", list(self._words)))
            else:
                options.extend(
                    (literal_cost([w]), "literal", [w])
                    for w in self._words
                    if _REPLACEMENT not in w
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
            if self._compile([_hs_literal(x.piece) for x in chosen]):
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
        # the escapes are prefix-free (RESULTS.md gotcha 3). Only a lone keyword
        # without other tests can skip decoding.
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
        if escaped is not None and (line.isascii() or _valid_utf8(line)):
            return escaped(line) is not None
        return self.matches_text(_unescape(line))

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


def _hs_literal(lit: bytes) -> bytes:
    return b"".join(b"\\x%02x" % c for c in lit)


# ---- regex translation -------------------------------------------------------------
# The translation maps an RE2 pattern over event bodies to a Hyperscan pattern
# over escaped lines that matches at least every line the RE2 pattern matches
# (a superset: every candidate is confirmed by RE2 on the decoded body). Each
# body character class becomes the alternatives of its escaped encodings, so
# nothing (`.` included) can cross an escaped newline unless the pattern's own
# class holds a newline. The pattern is parsed with Python's sre parser; only
# constructs both engines read the same way are accepted.

# Pattern text the two parsers read differently: POSIX classes (`[[:alpha:]]`),
# RE2's `{,n}` (a literal there, {0,n} in Python).
_DIFFERENT_SYNTAX = ("[:", "{,")
_ASCII = 128
_NONASCII = rb"[\x80-\xff]{1,4}"  # any one non-ASCII code point, or invalid bytes (U+FFFD)
_CATEGORIES: dict[object, frozenset[int]] = {
    # RE2's Perl classes are ASCII-only; \s is [\t\n\f\r ] (+ \v here, harmless).
    sre_c.CATEGORY_DIGIT: frozenset(b"0123456789"),
    sre_c.CATEGORY_WORD: frozenset(
        b"0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    ),
    sre_c.CATEGORY_SPACE: frozenset(b"\t\n\x0b\x0c\r "),
}
_NEGATED = {
    sre_c.CATEGORY_NOT_DIGIT: sre_c.CATEGORY_DIGIT,
    sre_c.CATEGORY_NOT_WORD: sre_c.CATEGORY_WORD,
    sre_c.CATEGORY_NOT_SPACE: sre_c.CATEGORY_SPACE,
}
_ALL_ASCII = frozenset(range(_ASCII))
_LETTERS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_FOLDS_NONASCII = frozenset(b"kKsS")


def _charset(ascii_set: frozenset[int], nonascii: bool, ci: bool = False) -> bytes:
    """Hyperscan alternatives for one body character from the set, as escaped bytes.

    ci: case-insensitive, as RE2's `(?i)`: both cases of ASCII letters, and any
    non-ASCII character for k and s (KELVIN SIGN and LONG S fold to them).
    """
    if ci:
        ascii_set = ascii_set | {ord(chr(c).swapcase()) for c in ascii_set if chr(c).isalpha()}
        nonascii = nonascii or bool(ascii_set & _FOLDS_NONASCII)
    alts: list[bytes] = []
    plain = sorted(ascii_set - {ord("\\"), ord("\n"), ord("\r")})
    if plain:
        alts.append(b"[" + b"".join(b"\\x%02x" % c for c in plain) + b"]")
    for char, esc in ((ord("\\"), rb"\x5c\x5c"), (10, rb"\x5cn"), (13, rb"\x5cr")):
        if char in ascii_set:
            alts.append(esc)
    if ord("#") in ascii_set:
        alts.append(rb"\x5c#")  # a body's leading '#' is stored as '\#'
    if nonascii:
        alts.append(_NONASCII)
    if not alts:
        raise Unsupported("an empty character class")
    return alts[0] if len(alts) == 1 else b"(?:" + b"|".join(alts) + b")"


def _char(c: int, ci: bool) -> bytes:
    if c < _ASCII:
        return _charset(frozenset((c,)), False, ci)
    if ci:
        return _charset(_LETTERS, True)  # a non-ASCII letter may fold to an ASCII one
    if chr(c) == _REPLACEMENT:
        return _NONASCII  # invalid UTF-8 in a text decodes to U+FFFD
    return b"".join(b"\\x%02x" % b for b in chr(c).encode())


def _class(items: list[tuple[object, object]], ci: bool) -> bytes:
    members: set[int] = set()
    nonascii = False
    negate = False
    for op, av in items:
        if op is sre_c.NEGATE:
            negate = True
        elif op is sre_c.LITERAL:
            assert isinstance(av, int)
            if av < _ASCII:
                members.add(av)
            else:
                nonascii = True
        elif op is sre_c.RANGE:
            assert isinstance(av, tuple)
            a, b = av
            members.update(range(a, min(b, _ASCII - 1) + 1))
            nonascii = nonascii or b >= _ASCII
        elif op is sre_c.CATEGORY and av in _CATEGORIES:
            members |= _CATEGORIES[av]
        elif op is sre_c.CATEGORY and av in _NEGATED:
            members |= _ALL_ASCII - _CATEGORIES[_NEGATED[av]]
            nonascii = True
        else:
            raise Unsupported(f"class item {op}")
    if ci:
        # Fold before negating: (?i)[^k] excludes K too. A non-ASCII member may
        # fold to an ASCII letter: allow them all (only when not negating, where
        # excluding less is the safe side).
        members |= {ord(chr(c).swapcase()) for c in members if chr(c).isalpha()}
        if nonascii and not negate:
            members |= _LETTERS
    if negate:
        return _charset(_ALL_ASCII - frozenset(members), True)
    return _charset(frozenset(members), nonascii, ci)


def _items(
    items: sre_parse.SubPattern | list[tuple[object, object]],
) -> list[tuple[object, object]]:
    if isinstance(items, sre_parse.SubPattern):
        return list(items.data)
    return items


def _seq(items: sre_parse.SubPattern | list[tuple[object, object]], ci: bool) -> bytes:
    return b"".join(_node(op, av, ci) for op, av in _items(items))


def _scoped_ci(ci: bool, add_flags: int, del_flags: int) -> bool:
    if (add_flags | del_flags) & ~sre_c.SRE_FLAG_IGNORECASE:
        raise Unsupported("inline flags other than i")
    return (ci or bool(add_flags & sre_c.SRE_FLAG_IGNORECASE)) and not (
        del_flags & sre_c.SRE_FLAG_IGNORECASE
    )


def _node(op: object, av: object, ci: bool) -> bytes:
    if op is sre_c.LITERAL:
        assert isinstance(av, int)
        return _char(av, ci)
    if op is sre_c.NOT_LITERAL:
        assert isinstance(av, int)
        return _class([(sre_c.NEGATE, None), (sre_c.LITERAL, av)], ci)
    if op is sre_c.ANY:
        return _charset(_ALL_ASCII - {10}, True)
    if op is sre_c.IN:
        assert isinstance(av, list)
        return _class(av, ci)
    if op is sre_c.BRANCH:
        assert isinstance(av, tuple)
        return b"(?:" + b"|".join(_seq(alt, ci) for alt in av[1]) + b")"
    if op is sre_c.SUBPATTERN:
        assert isinstance(av, tuple)
        _group, add_flags, del_flags, sub = av
        return b"(?:" + _seq(sub, _scoped_ci(ci, add_flags, del_flags)) + b")"
    if op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT):
        # Lazy or greedy: the same lines match, and only lines are reported.
        assert isinstance(av, tuple)
        lo, hi, sub = av
        inner = b"(?:" + _seq(sub, ci) + b")"
        if hi is sre_c.MAXREPEAT:
            return inner + (b"*" if lo == 0 else b"+" if lo == 1 else b"{%d,}" % lo)
        return inner + b"{%d,%d}" % (lo, hi)
    if op is sre_c.AT:
        if av in (sre_c.AT_BEGINNING, sre_c.AT_BEGINNING_STRING):
            return b"^"  # body start = line start (HS_FLAG_MULTILINE)
        if av is sre_c.AT_END:
            # RE2's `$` is the body's end = the line's newline. Consumed, not
            # asserted: Hyperscan 0.9.1's multiline `$` misses some matches before
            # a buffer's final newline (`[Ba]$` on b"\nBBxxxx\nBBxx\xe2\x84\xaaB\n").
            return rb"\x0a"
        if av in (sre_c.AT_BOUNDARY, sre_c.AT_NON_BOUNDARY):
            # Word boundaries next to escapes are not the body's; dropping a
            # zero-width test only widens the superset.
            return b""
    raise Unsupported(f"{op}".lower())


def _required(
    items: sre_parse.SubPattern | list[tuple[object, object]], ci: bool
) -> list[list[str]]:
    """Sets of literals (as body text) one of which every match must contain.

    Case-insensitive parts give none (their bytes are not fixed).
    """
    sets: list[list[str]] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            sets.append(["".join(run)])
            run.clear()

    for op, av in _items(items):
        if op is sre_c.LITERAL and isinstance(av, int) and chr(av) != _REPLACEMENT and not ci:
            run.append(chr(av))
            continue
        flush()
        if op is sre_c.SUBPATTERN and isinstance(av, tuple):
            sets += _required(av[3], _scoped_ci(ci, av[1], av[2]))
        elif op is sre_c.BRANCH and isinstance(av, tuple):
            union: list[str] = []
            for alt in av[1]:
                alt_sets = _required(alt, ci)
                if not alt_sets:
                    union = []
                    break
                union += max(alt_sets, key=lambda s: min(map(len, s)))
            if union:
                sets.append(sorted(set(union)))
        elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT) and isinstance(av, tuple) and av[0] >= 1:
            sets += _required(av[2], ci)
    flush()
    return sets


# Hyperscan's compile cannot be interrupted, and its time grows fast with
# repeats: nested repeats of alternatives about double it per level
# (`((a|b)+)+...` 25 deep: 1.3 s; 30 deep: over a minute), and a bounded repeat
# copies its body (`.{1000}`: 0.7 s, then "too large"). Past these bounds the
# translation is refused, and the query runs on the RE2 fallback, which checks
# the deadline as it scans.
_HS_MAX_REPEAT_NESTING = 6
_HS_MAX_POSITIONS = 2000  # weighted character alternatives, bounded repeats expanded


def _positions(
    items: sre_parse.SubPattern | list[tuple[object, object]], ci: bool, nesting: int, room: int
) -> int:
    """The alternatives the translation holds, counting each copy a repeat makes;
    raises Unsupported past `room` or past _HS_MAX_REPEAT_NESTING nested repeats."""
    total = 0
    for op, av in _items(items):
        if op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT):
            assert isinstance(av, tuple)
            lo, hi, sub = av
            if nesting >= _HS_MAX_REPEAT_NESTING:
                raise Unsupported("repeats nested too deep for Hyperscan")
            copies = max(lo if hi is sre_c.MAXREPEAT else hi, 1)
            total += copies * _positions(sub, ci, nesting + 1, (room - total) // copies + 1)
        elif op is sre_c.BRANCH:
            assert isinstance(av, tuple)
            for alt in av[1]:
                total += _positions(alt, ci, nesting, room - total)
        elif op is sre_c.SUBPATTERN:
            assert isinstance(av, tuple)
            total += _positions(av[3], _scoped_ci(ci, av[1], av[2]), nesting, room - total)
        elif op is not sre_c.AT:
            leaf = _node(op, av, ci)
            # Any non-ASCII character is itself a repeat ({1,4} bytes): the costly part.
            total += (leaf.count(b"|") + 1) * (4 if _NONASCII in leaf else 1)
        if total > room:
            raise Unsupported("too large for Hyperscan")
    return total


def translate_regex(pattern: str) -> tuple[bytes, list[list[str]]]:
    """(Hyperscan expression over escaped lines, required-literal sets) for an RE2 pattern.

    The expression matches every line whose body the pattern matches (maybe
    more); every literal set has a member in every match. Raises Unsupported.
    """
    for text in _DIFFERENT_SYNTAX:
        if text in pattern:
            raise Unsupported(f"{text!r} reads differently in RE2 and Python")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "possible nested set" and the like
            tree = sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise Unsupported(f"parse: {exc}") from None
    flags = tree.state.flags & ~sre_c.SRE_FLAG_UNICODE
    if flags & ~sre_c.SRE_FLAG_IGNORECASE:
        raise Unsupported("flags other than i")
    ci = bool(flags & sre_c.SRE_FLAG_IGNORECASE)
    if tree.getwidth()[0] == 0:
        # Hyperscan rejects or silently skips zero-length matches (`^$`, `a*`);
        # such a pattern has no required bytes to scan for anyway.
        raise Unsupported("can match the empty string")
    _positions(tree, ci, 0, _HS_MAX_POSITIONS)
    expr = _seq(tree, ci)
    required = [s for s in _required(tree, ci) if all(len(x.encode()) >= 2 for x in s)]
    return expr, required


# ---- exact RE2 over escaped lines ----------------------------------------------------
# Confirming a candidate by decoding it costs more than the RE2 search itself
# on long multi-line events (unescape ~10 us, search ~5 us on 1.8 KB). For the
# common subset (literals, `.`, ASCII classes, groups, repeats, `^`, `$`) an
# RE2 pattern over the escaped line gives exactly the body's answer: RE2 reads
# UTF-8, so a class matches one code point like on the body; each body
# character becomes the alternatives of its escaped forms; and the prefix makes
# every match start on an escape boundary (an even run of backslashes before
# it), so `refused` cannot match the `r` of a `\r`. Only valid UTF-8 lines use it
# (invalid bytes decode to U+FFFD groups the bytes cannot mirror).
_RE2_BOUNDARY = r"(?:^|[^\\])(?:\\\\)*"


def _re2_set(members: frozenset[int], negate: bool) -> str:
    """RE2 alternatives for one body character in (or, negated, outside) ASCII `members`."""
    special = {ord("\\"), 10, 13}
    units = ((ord("\\"), r"\\\\"), (10, r"\\n"), (13, r"\\r"), (ord("#"), r"\\#"))
    plain: list[int] = []
    if negate:
        excluded = "".join(f"\\x{c:02x}" for c in sorted(members | special))
        alts = [f"[^{excluded}]"]
        alts += [esc for c, esc in units if c not in members]
    else:
        plain = sorted(members - special)
        listed = "".join(f"\\x{c:02x}" for c in plain)
        alts = [f"[{listed}]"] if plain else []
        alts += [esc for c, esc in units if c in members]
    if not alts:
        raise Unsupported("an empty character class")
    if len(alts) == 1:
        # A lone byte stays a plain literal, so RE2 keeps its literal shortcuts.
        return f"\\x{plain[0]:02x}" if not negate and len(plain) == 1 else alts[0]
    return "(?:" + "|".join(alts) + ")"


def _re2_class(items: list[tuple[object, object]]) -> str:
    members: set[int] = set()
    negate = False
    for op, av in items:
        if op is sre_c.NEGATE:
            negate = True
        elif op is sre_c.LITERAL and isinstance(av, int) and av < _ASCII:
            members.add(av)
        elif op is sre_c.RANGE and isinstance(av, tuple) and av[1] < _ASCII:
            members.update(range(av[0], av[1] + 1))
        elif op is sre_c.CATEGORY and av in _CATEGORIES:
            members |= _CATEGORIES[av]
        elif op is sre_c.CATEGORY and av in _NEGATED and len(items) == 1:
            return _re2_set(_CATEGORIES[_NEGATED[av]], True)
        else:
            raise Unsupported("class with non-ASCII members")
    return _re2_set(frozenset(members), negate)


def _re2_seq(items: sre_parse.SubPattern | list[tuple[object, object]]) -> str:
    out: list[str] = []
    for op, av in _items(items):
        if op is sre_c.LITERAL and isinstance(av, int):
            out.append(_re2_set(frozenset((av,)), False) if av < _ASCII else f"\\x{{{av:x}}}")
        elif op is sre_c.NOT_LITERAL and isinstance(av, int) and av < _ASCII:
            out.append(_re2_set(frozenset((av,)), True))
        elif op is sre_c.ANY:
            out.append(_re2_set(frozenset((10,)), True))
        elif op is sre_c.IN and isinstance(av, list):
            out.append(_re2_class(av))
        elif op is sre_c.BRANCH and isinstance(av, tuple):
            out.append("(?:" + "|".join(_re2_seq(alt) for alt in av[1]) + ")")
        elif op is sre_c.SUBPATTERN and isinstance(av, tuple) and not (av[1] or av[2]):
            out.append("(?:" + _re2_seq(av[3]) + ")")
        elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT) and isinstance(av, tuple):
            lo, hi, sub = av
            top = "" if hi is sre_c.MAXREPEAT else str(hi)
            out.append(f"(?:{_re2_seq(sub)}){{{lo},{top}}}")
        elif op is sre_c.AT and av in (sre_c.AT_BEGINNING, sre_c.AT_BEGINNING_STRING):
            out.append("^")
        elif op is sre_c.AT and av is sre_c.AT_END:
            out.append("$")  # the line is searched without its newline: end of text
        else:
            raise Unsupported(f"{op}".lower())
    return "".join(out)


def escaped_re2(pattern: str) -> str:
    """An RE2 pattern over escaped valid-UTF-8 lines exactly equal to `pattern` on bodies."""
    for text in _DIFFERENT_SYNTAX:
        if text in pattern:
            raise Unsupported(f"{text!r} reads differently in RE2 and Python")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise Unsupported(f"parse: {exc}") from None
    if tree.state.flags & ~sre_c.SRE_FLAG_UNICODE:
        raise Unsupported("flags")
    return f"{_RE2_BOUNDARY}(?:{_re2_seq(tree)})"
