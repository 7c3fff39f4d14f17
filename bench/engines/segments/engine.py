"""Query side of the prototype: mmap'd escaped segment + sidecar index, Hyperscan scans.

Escaped layout (logcaster raw blocks): one event per line, '\\' -> '\\\\', inner '\n' -> '\\n',
CR -> '\\r' (only in batches holding a CR), a line-leading '#' -> '\\#'.
"""
from __future__ import annotations
import json, mmap, os, threading
import numpy as np
import hyperscan as hs
from logcaster.storage.blocks import _unescape_line
from common import STORE, LEVEL_CODE

_ESC_START = b"\\nr"  # bytes that can follow an escape backslash mid-escape (besides '#')


def escape_literal(kw: bytes) -> bytes:
    return kw.replace(b"\\", b"\\\\").replace(b"\n", b"\\n").replace(b"\r", b"\\r")


def _hs_lit(b: bytes) -> bytes:
    return b"".join(b"\\x%02x" % c for c in b)


# A match must start on an escape boundary: an even number of backslashes before it.
_BOUNDARY = rb"(?:^|[^\\])(?:\\\\)*"


def keyword_expr(kw: bytes) -> bytes:
    """Hyperscan expression for a case-sensitive substring over escaped lines (exact)."""
    e = _hs_lit(escape_literal(kw))
    # a keyword starting with 'n', 'r' or '\' could match inside an escape: anchor it
    return (_BOUNDARY + e) if kw[:1] and kw[:1] in _ESC_START else e


class Unsupported(ValueError):
    pass


def translate_regex(pattern: str) -> bytes:
    """RE2 pattern over event bodies -> equivalent Hyperscan pattern over escaped lines.

    Supported subset: everything whose atoms can't match '\\' or a newline except '.',
    which becomes 'one escaped char other than an escaped newline'. Negated classes, \\s \\S
    \\W \\D \\B \\b, literal backslashes/newlines and (?s) raise Unsupported (fallback: RE2 on
    unescaped lines of chunks; not needed for the benchmark queries)."""
    out = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        c = pattern[i]
        if c == "\\":
            nx = pattern[i + 1] if i + 1 < n else ""
            if nx in "sSWDbBnr\\" or nx == "":
                raise Unsupported(f"escape \\{nx}")
            out.append(c + nx)
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
            out.append(c)
        elif c == "[":
            if pattern[i + 1 : i + 2] == "^":
                raise Unsupported("negated class")
            in_class = True
            out.append(c)
        elif c == ".":
            out.append(r"(?:[^\\\n]|\\[^n\n])")
        elif c == "(" and pattern[i + 1 : i + 2] == "?" and "s" in pattern[i + 2 : i + 6].split(")")[0].split(":")[0]:
            raise Unsupported("(?s)")
        else:
            out.append(c)
        i += 1
    body = "".join(out).encode()
    first = pattern.lstrip("(")[:1]
    # conservative: anchor unless the pattern plainly starts with a letter other than n/r
    if not (first.isalnum() and first not in "nr") or "|" in pattern.split(")")[0] and any(
        a[:1] in ("n", "r", "\\") for a in pattern.lstrip("(").split(")")[0].split("|")):
        body = _BOUNDARY + b"(?:" + body + b")"
    return body


def compile_db(expr: bytes, flags: int = 0) -> hs.Database:
    db = hs.Database(mode=hs.HS_MODE_BLOCK)
    db.compile(expressions=[expr], ids=[0], flags=[flags | hs.HS_FLAG_MULTILINE])
    return db


class Store:
    def __init__(self, path=STORE):
        self.f = open(os.path.join(path, "seg.log"), "rb")
        self.m = mmap.mmap(self.f.fileno(), 0, access=mmap.ACCESS_READ)
        c = np.load(os.path.join(path, "chunks.npz"))
        self.off, self.len, self.first, self.count = c["off"], c["len"], c["first"], c["count"]
        self.tmin, self.tmax, self.lcount, self.scount = c["tmin"], c["tmax"], c["lcount"], c["scount"]
        self.nrecv, self.received, self.lrecv = c["nrecv"], c["received"], c["lrecv"]
        self.ts = np.load(os.path.join(path, "ev_ts.npy"), mmap_mode="r")
        self.lv = np.load(os.path.join(path, "ev_level.npy"), mmap_mode="r")
        self.sv = np.load(os.path.join(path, "ev_svc.npy"), mmap_mode="r")
        self.services = json.load(open(os.path.join(path, "services.json")))
        self.size = len(self.m)
        self._lvts = {}

    # ---- scanning -------------------------------------------------------------
    def count_lines(self, db, lo=0, hi=None, scratch=None):
        """Number of lines (= events) in [lo, hi) with at least one match."""
        m = self.m
        hi = self.size if hi is None else hi
        st = [0, -1]
        find = m.find

        def cb(_id, _frm, to, _fl, _ctx):
            if to > st[1]:
                st[0] += 1
                st[1] = find(b"\n", lo + to) - lo
        db.scan(memoryview(m)[lo:hi], match_event_handler=cb, scratch=scratch)
        return st[0]

    def count_lines_threads(self, db, nthreads=2):
        cuts = [0]
        for k in range(1, nthreads):
            cuts.append(self.m.find(b"\n", self.size * k // nthreads) + 1)
        cuts.append(self.size)
        res = [0] * nthreads
        scratches = [hs.Scratch(db) for _ in range(nthreads)]

        def run(k):
            res[k] = self.count_lines(db, cuts[k], cuts[k + 1], scratches[k])
        th = [threading.Thread(target=run, args=(k,)) for k in range(nthreads)]
        for t in th: t.start()
        for t in th: t.join()
        return sum(res)

    def newest_matching(self, db, limit=100):
        """The `limit` highest-id events matching db, newest first: (id, text) pairs."""
        m = self.m
        out = []
        for c in range(len(self.off) - 1, -1, -1):
            base, ln = int(self.off[c]), int(self.len[c])
            starts = []
            last = [-1]

            def cb(_id, _frm, to, _fl, _ctx):
                if to > last[0]:
                    s = m.rfind(b"\n", base, base + to) + 1
                    starts.append(s)
                    last[0] = m.find(b"\n", base + to) - base
            db.scan(memoryview(m)[base : base + ln], match_event_handler=cb)
            if not starts:
                continue
            chunk = m[base : base + ln]
            prev, line = 0, 0
            ids = []
            for s in starts:
                line += chunk.count(b"\n", prev, s - base)
                prev = s - base
                ids.append(int(self.first[c]) + line)
            for s, i in zip(reversed(starts), reversed(ids)):
                e = m.find(b"\n", s)
                raw = m[s:e]
                out.append((i, _unescape_line(raw) if b"\\" in raw else raw))
                if len(out) == limit:
                    return out
        return out

    # ---- index-only queries -----------------------------------------------------
    def count_level(self, level):
        return int(self.lcount[:, LEVEL_CODE[level]].sum())

    def count_level_window(self, level, lo, hi):
        """Exact count from per-chunk metadata; only chunks whose own-time range straddles a
        window edge are checked against their columns."""
        code = LEVEL_CODE[level]
        empty = self.tmin > self.tmax
        own_full = ~empty & (self.tmin >= lo) & (self.tmax <= hi)
        own_part = ~empty & ~own_full & (self.tmax >= lo) & (self.tmin <= hi)
        r_in = (self.received >= lo) & (self.received <= hi)
        lown = self.lcount[:, code].astype(np.int64) - self.lrecv[:, code]
        n = int(lown[own_full].sum()) + int(self.lrecv[~own_part & r_in, code].sum())
        for c in np.flatnonzero(own_part).tolist():
            a, b = int(self.first[c]), int(self.first[c] + self.count[c])
            ts = self.ts[a:b]
            n += int(np.count_nonzero((ts >= lo) & (ts <= hi) & (self.lv[a:b] == code)))
        return n, int(own_full.sum()), int(own_part.sum())

    def count_level_window_lvts(self, level, lo, hi):
        a = np.load(os.path.join(STORE, f"lvts_{level}.npy"), mmap_mode="r") if level not in self._lvts else self._lvts[level]
        self._lvts[level] = a
        return int(np.count_nonzero((a >= lo) & (a <= hi)))

    def count_level_window_columns(self, level, lo, hi):
        ts = self.ts
        return int(np.count_nonzero((ts >= lo) & (ts <= hi) & (self.lv == LEVEL_CODE[level])))


# ---- rare-piece literal (Q1 speed-up) ---------------------------------------------
def pair_freq(sample: bytes) -> np.ndarray:
    """Byte-pair counts of a sample (e.g. one chunk), computed once per store."""
    a = np.frombuffer(sample, np.uint8).astype(np.int32)
    return np.bincount(a[:-1] * 256 + a[1:], minlength=65536)


def rare_piece(kw: bytes, freq: np.ndarray, min_len: int = 3) -> int:
    """Start of the keyword suffix whose first byte pair is rarest (Hyperscan's literal engine
    looks for a short prefix of the literal; a rare one means few false candidates)."""
    best, at = None, 0
    for i in range(0, max(1, len(kw) - min_len + 1)):
        f = freq[kw[i] * 256 + kw[i + 1]] if i + 1 < len(kw) else 0
        if best is None or f < best:
            best, at = f, i
    return at


class KeywordScanner:
    """Exact per-line keyword count: Hyperscan finds a rare piece, the callback checks the
    whole (escaped) keyword around it. Same semantics as keyword_expr."""

    def __init__(self, store: Store, kw: bytes):
        self.s = store
        ekw = escape_literal(kw)
        if kw[:1] in (b"n", b"r", b"\\"):   # needs the escape-boundary anchor: plain path
            self.k, self.piece, self.ekw = 0, None, ekw
            self.db = compile_db(keyword_expr(kw))
            return
        off, ln = int(store.off[0]), int(store.len[0])
        self.k = rare_piece(ekw, pair_freq(store.m[off:off + ln]))
        self.piece, self.ekw = ekw[self.k:], ekw
        self.db = compile_db(_hs_lit(self.piece))

    def count(self, lo=0, hi=None, scratch=None):
        if self.piece is None:
            return self.s.count_lines(self.db, lo, hi, scratch)
        m, ekw, k, lp = self.s.m, self.ekw, self.k, len(self.piece)
        hi = self.s.size if hi is None else hi
        st = [0, -1]

        def cb(_i, _f, to, _fl, _c):
            a = lo + to - lp - k
            if to > st[1] and m[a:a + len(ekw)] == ekw:
                st[0] += 1
                st[1] = m.find(b"\n", lo + to) - lo
        self.db.scan(memoryview(m)[lo:hi], match_event_handler=cb, scratch=scratch)
        return st[0]


def required_literal_sets(pattern: str) -> list[list[str]]:
    """Naive required-literal extraction (prototype): each returned set holds literals one of
    which every match must contain. (1) a leading `(a|b|c)` group of plain literals; (2) plain
    literal runs at nesting depth 0 (the pattern must have no top-level '|'); a run's last
    char is dropped if a ?, * or { quantifier follows it."""
    import re as _re
    sets = []
    m = _re.match(r"\(([A-Za-z0-9 _-]+(?:\|[A-Za-z0-9 _-]+)*)\)(?![?*{+])", pattern)
    if m:
        sets.append(m.group(1).split("|"))
    depth, run, top_bar, runs = 0, "", False, []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            runs.append(run); run = ""; i += 2; continue
        if c in "([":
            runs.append(run); run = ""
            if c == "[":
                j = pattern.index("]", i + 1)
                i = j + 1
                continue
            depth += 1
        elif c == ")":
            depth -= 1; runs.append(run); run = ""
        elif c == "|" and depth == 0:
            top_bar = True
        elif depth == 0 and (c.isalnum() or c in " _-:/=,;'\"@#%&<>~`!"):
            run += c
        elif depth == 0 and c in "?*{":
            runs.append(run[:-1]); run = ""
        else:
            runs.append(run); run = ""
        i += 1
    runs.append(run)
    if not top_bar:
        sets += [[r] for r in runs if len(r) >= 3]
    return sets


class RegexScanner:
    """Regex count with a rare-literal prefilter (what ripgrep does): Hyperscan scans for rare
    pieces of the literals one of which every match must contain (here: the leading
    `(lit|lit|...)` group, parsed naively; other patterns -> plain Hyperscan scan), and each
    candidate line is verified once with the translated pattern (google-re2, same semantics)."""

    def __init__(self, store: Store, pattern: str):
        import re as _re, re2
        self.s = store
        expr = translate_regex(pattern)
        self.full_db = compile_db(expr)
        self.verify = re2.compile(expr.replace(b"(?:^|", b"(?:\\A|", 1) if expr.startswith(_BOUNDARY) else expr)
        self.pieces = None
        self.db = None
        sets = required_literal_sets(pattern)
        if sets:
            off, ln = int(store.off[0]), int(store.len[0])
            sample = store.m[off:off + ln]
            freq = pair_freq(sample)
            # estimated candidates = occurrences in one sample chunk; fewer literals on ties
            # (Hyperscan's multi-literal engine is ~1.7x slower than a single literal)
            best = min(sets, key=lambda s: (sum(sample.count(escape_literal(x.encode())) + 1 for x in s) * (1 + 0.7 * (len(s) > 1)), len(s)))
            if len(best) > 1:
                # measured: Hyperscan's multi-literal scan (eout|fused: 204 ms) is no faster than
                # the full regex (~190-220 ms), so only a single required literal prefilters
                return
            lits = [escape_literal(x.encode()) for x in best]
            self.pieces = [lit[rare_piece(lit, freq):] for lit in lits]
            self.db = hs.Database(mode=hs.HS_MODE_BLOCK)
            self.db.compile(expressions=[_hs_lit(p) for p in self.pieces], ids=list(range(len(self.pieces))),
                            flags=[0] * len(self.pieces))

    def count(self, lo=0, hi=None, scratch=None):
        if self.pieces is None:
            return self.s.count_lines(self.full_db, lo, hi, scratch)
        m, search = self.s.m, self.verify.search
        hi = self.s.size if hi is None else hi
        st = [0, -1]

        def cb(_i, _f, to, _fl, _c):
            if to > st[1]:
                end = m.find(b"\n", lo + to)
                st[1] = end - lo
                if search(m[m.rfind(b"\n", 0, lo + to) + 1:end]) is not None:
                    st[0] += 1
        self.db.scan(memoryview(m)[lo:hi], match_event_handler=cb, scratch=scratch)
        return st[0]
