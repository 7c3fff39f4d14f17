"""Which chunks a query's text can match, read from the token index (store/terms.py).

A `TermPlan` turns the text part of a query into conditions a chunk must meet
to hold a match:

- *pieces* (runs of 3+ token bytes that a match must contain): keywords
  joined by AND are one condition each, keywords joined by OR one condition
  together, each required-literal set of a regex (store/patterns.py) one
  more. A piece lies in a common term (a substring test over the few distinct
  common terms of the segment) or in a term of the chunk's list, which one
  Hyperscan scan over a run of chunks' lists finds (about a tenth of their
  text; one report per piece and chunk);
- *whole terms*: a `field=value` value made of token bytes is a whole term
  wherever the field has it (every format delimits values with other bytes),
  so the chunk's common terms or its bloom filter must hold it: no scan.

When the query is keywords only, each keyword is its own piece and cannot
start inside an escape, and only common terms hold the pieces, the chunk's
rows come from their bitmaps: no text is read (`TermPlan.rows_exact`).
Every chunk that may match and is not answered so is scanned as before, so
answers stay exact.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import mmap
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import hyperscan
import numpy as np
import numpy.typing as npt

from logcaster.store.patterns import Unsupported, translate_regex
from logcaster.store.term_views import TermFiles
from logcaster.store.terms import (
    ASCII_RUNS,
    MAX_LENGTH,
    TOKEN_BYTES,
    bloom_positions,
    post_sections,
    term_hashes,
)
from logcaster.store.word_finder import hs_literal

I64 = npt.NDArray[np.int64]
MIN_PIECE = 3  # shorter pieces match too many terms to prune anything
_MID_ESCAPE = frozenset(b"nr")
_SIGN_DIGITS = frozenset(b"0123456789-")  # `\n`, `\r`: a term may start with the escape's letter
# Term-list hits per chunk of a run before the scan stops and goes chunk by chunk
# (each piece once per chunk): a piece in most terms costs no callback storm.
_HITS_PER_CHUNK = 4
_MIN_PART = 1 << 20  # term lists split between the scan threads in parts of at least this


def piece_of(text: str) -> bytes | None:
    """The longest run of token bytes (ASCII) of a body literal that holds a byte
    other than a digit (digits-only terms are not listed), if 3+ bytes long."""
    runs = ASCII_RUNS.findall(text.encode("ascii", "replace").replace(b"?", b" "))
    usable = [r for r in runs if not r.isdigit()]
    best = max(usable, key=len, default=b"")
    return best if len(best) >= MIN_PIECE else None


def whole_term(value: str) -> bytes | None:
    """A field value as the whole term it must be in the text, if it is one.

    Only values with a letter or `_`: digits and signs may be a parser's
    rendering rather than the text's (a JSON `-0` is 0, syslog's facility is
    computed from the PRI), and those are left to the scan."""
    raw = value.encode("utf-8")
    if not raw or not raw.isascii() or not all(c in TOKEN_BYTES for c in raw):
        return None
    return raw if any(c not in _SIGN_DIGITS for c in raw) else None


class TermPlan:
    """The token-index conditions of one query's text part (None from `make` if none)."""

    def __init__(
        self, conditions: list[list[bytes]], wholes: list[bytes], rows_exact: bool
    ) -> None:
        self.pieces: list[bytes] = sorted({p for cond in conditions for p in cond})
        at = {p: i for i, p in enumerate(self.pieces)}
        self.conditions: list[list[int]] = [sorted({at[p] for p in cond}) for cond in conditions]
        self.wholes = sorted(set(wholes))
        self._whole_hashes = term_hashes(self.wholes)
        self.whole_hashes = [int(h) for h in self._whole_hashes]  # (segment filters)
        # Pieces the bloom filters hold wherever they are a whole term (not digits
        # and `-` only, as terms.build_terms leaves those out).
        self._bloomed = [int(any(c not in _SIGN_DIGITS for c in p)) for p in self.pieces]
        self._piece_hashes = term_hashes(self.pieces)
        self.rows_exact = rows_exact
        # active pieces -> their database and each one's rare part (_rare_part)
        self._dbs: dict[tuple[int, ...], tuple[hyperscan.Database, list[tuple[bytes, int]]]] = {}
        self._everywhere: set[int] = set()  # pieces in too many terms to prune
        # Segments (token index bases) where a large group's decision left every
        # chunk to the scan: a later query with this plan scans them at once
        # (deciding costs a scan of a tenth of the text; skipping it is always exact).
        self.fruitless: set[Path] = set()
        self._local = threading.local()  # Hyperscan scratch per query thread
        self._holders: dict[bytes, list[int]] = {}  # common term -> pieces it holds

    @classmethod
    def make(
        cls,
        keywords: Sequence[str],
        operator: Literal["AND", "OR"],
        regex: str | None,
        fields: Sequence[str] = (),
    ) -> TermPlan | None:
        """The plan of keywords (with `operator`), a regex and `field=value` values
        (each AND-ed); None when the index can decide nothing."""
        conditions: list[list[bytes]] = []
        pieces = [piece_of(k) for k in keywords]
        usable = [p for p in pieces if p is not None]
        if operator == "OR" and len(keywords) > 1:
            # One keyword the index cannot look up (or an empty one) may match anywhere.
            if usable and len(usable) == len(pieces):
                conditions.append(usable)
        else:
            conditions.extend([p] for p in usable)
        # Rows from bitmaps need each keyword to be its own piece (all token bytes)
        # and unable to start inside an escape.
        own = [k.encode() for k in keywords]
        rows_exact = (
            regex is None
            and not fields
            and bool(keywords)
            and pieces == own
            and all(k[0] not in _MID_ESCAPE for k in own)
        )
        if regex is not None:
            with contextlib.suppress(Unsupported):
                for alternatives in translate_regex(regex)[1]:
                    alts = [piece_of(a) for a in alternatives]
                    if alts and all(a is not None for a in alts):
                        conditions.append([a for a in alts if a is not None])
        wholes = [w for w in map(whole_term, fields) if w is not None]
        # A whole term is also a piece: looked up in the term lists of the chunks
        # whose bloom filter holds it, it rules out the filter's false hits
        # (about 1%: at 2,000 chunks, 20 chunk scans) for a tenth of their text.
        conditions.extend([w] for w in wholes if len(w) >= MIN_PIECE)
        if not conditions and not wholes:
            return None
        return cls(conditions, wholes, rows_exact)

    # ---- per chunk ---------------------------------------------------------------
    def decide(
        self,
        files: TermFiles,
        record_of: dict[int, int],
        chunk_rows: npt.NDArray[np.uint64],
        group: Sequence[int],
        pool: Executor | None = None,
        threads: int = 1,
        absent: frozenset[int] = frozenset(),
    ) -> Decision:
        """Split `group` (chunk numbers of one segment, ascending): chunks without a
        token record are scanned; the others are skipped, answered or scanned.

        `record_of`: chunk number -> token record; `chunk_rows`: each chunk's first row.
        `pool`, `threads`: the reader's scan threads (Hyperscan releases the GIL):
        large term lists are scanned in that many parts, in parallel. `absent`: the
        pieces the segment's filter holds nowhere as a whole term (`absent_pieces`)."""
        out = Decision()
        chunks = [c for c in group if c in record_of]
        out.scan.extend(c for c in group if c not in record_of)
        if not chunks:
            return out
        records = [record_of[c] for c in chunks]
        possible = self._wholes_present(files, records)
        rare = self._rare_hits(files, records, possible, pool, threads, absent)
        holders = self._common_holders(files)
        if not holders:
            # No common term holds a piece: the term lists decide, for all at once.
            for cond in self.conditions:
                possible &= rare[:, cond].any(axis=1)
            kept = np.flatnonzero(possible).tolist()
            out.scan.extend(chunks[k] for k in kept)
            out.skipped += len(chunks) - len(kept)
            out.scan.sort()
            return out
        for k, (chunk, record) in enumerate(zip(chunks, records, strict=True)):
            if not possible[k]:
                out.skipped += 1
                continue
            common = files.common_index(record)
            held: list[list[int]] = [[] for _ in self.pieces]
            for term, pieces in holders.items():
                n = common.get(term)
                if n is not None:
                    for i in pieces:
                        held[i].append(n)
            if not all(any(rare[k, i] or held[i] for i in cond) for cond in self.conditions):
                out.skipped += 1
            elif self.rows_exact and not rare[k].any():
                out.rows.append(self._rows(files, record, held) + int(chunk_rows[chunk]))
            else:
                out.scan.append(chunk)
        out.scan.sort()
        return out

    def absent_pieces(self, lacks: Callable[[list[int]], bool]) -> frozenset[int]:
        """The pieces that a segment holds nowhere as a whole term, by its filter
        (`lacks(hashes)`): `decide` then looks for them only in its longer terms."""
        hashes = self._piece_hashes.tolist()
        return frozenset(i for i, h in enumerate(hashes) if self._bloomed[i] and lacks([h]))

    def may_hold_wholes(
        self, files: TermFiles, record_of: dict[int, int], chunks: I64
    ) -> npt.NDArray[np.bool_]:
        """Per chunk number of `chunks`: False where its token record rules out one of
        the whole terms (its common terms and bloom filter lack it); True without a
        record (the scan decides there)."""
        ok = np.ones(len(chunks), np.bool_)
        if not self.wholes:
            return ok
        records = [record_of.get(c, -1) for c in chunks.tolist()]
        have = [k for k, r in enumerate(records) if r >= 0]
        if have:
            ok[have] = self._wholes_present(files, [records[k] for k in have])
        return ok

    def _wholes_present(self, files: TermFiles, records: list[int]) -> npt.NDArray[np.bool_]:
        """Per record: whether it may hold every whole term (common list or bloom)."""
        ok = np.ones(len(records), np.bool_)
        if not self.wholes:
            return ok
        at = np.asarray(records, np.int64)
        for term, h in zip(self.wholes, self._whole_hashes, strict=True):
            in_bloom = _in_bloom(files, at, h)
            if term in files.all_common():
                in_bloom |= np.array([term in files.common_index(r) for r in records], np.bool_)
            ok &= in_bloom
        return ok

    def _rare_hits(
        self,
        files: TermFiles,
        records: list[int],
        wanted: npt.NDArray[np.bool_],
        pool: Executor | None,
        threads: int,
        absent: frozenset[int],
    ) -> npt.NDArray[np.bool_]:
        """(records x pieces): whether a term of the record's list holds the piece.

        Only the terms long enough to hold a piece are scanned (the lists are
        sorted by length), and of those of a piece's own length (where holding
        it is being it) only in the lists whose bloom filter may hold it, when
        the filters hold it (`_bloomed`): a 32-byte id is looked up among the
        few longer terms, and among those of 32 bytes in the chunks that may
        have it, a filter's false hit ruled out there.

        A piece found in more than a few terms per chunk (`user-7` among user
        ids) prunes nothing: it is taken as present everywhere and the scan
        goes on without it, for this and the query's later groups."""
        hits = np.zeros((len(records), len(self.pieces)), np.bool_)
        active = [i for i in range(len(self.pieces)) if i not in self._everywhere]
        if not active or not wanted.any():
            hits[:, sorted(self._everywhere)] = True
            return hits
        at = np.asarray(records, np.int64)
        cols = files.columns()
        shortest = np.full(len(at), MAX_LENGTH, np.int64)
        for i in active:
            length = len(self.pieces[i])
            if self._bloomed[i] and length < MAX_LENGTH:
                # Not a whole term in the segment (`absent`), or not in the chunk's
                # filter: only the chunk's longer terms may hold it.
                maybe = i not in absent and _in_bloom(files, at, self._piece_hashes[i])
                np.minimum(shortest, np.where(maybe, length, length + 1), out=shortest)
            else:
                np.minimum(shortest, min(length, MAX_LENGTH), out=shortest)
        starts = cols["terms_start"][at]
        lows = starts + _length_offsets(files, at, shortest)
        ends = cols["terms_end"][at]
        # A list's rest of one b"\n" has no term left to scan.
        wanted = wanted & (ends - lows > 1)
        total = int((ends - lows)[wanted].sum())
        parts = _parts(lows, ends, wanted, max(total // max(threads, 1) + 1, _MIN_PART))
        buf = files.terms
        with memoryview(buf) as view:

            def scan(part: list[tuple[int, int]]) -> list[tuple[int, int]]:
                while len(self._everywhere) < len(self.pieces):
                    budget = _HITS_PER_CHUNK * len(part) + 64
                    found, over = self._scan_run(view, buf, part, budget)
                    if over is None:
                        return found
                    self._everywhere.add(over)  # a set's add is atomic: threads share it
                return []

            if pool is not None and len(parts) > 1:
                results = list(pool.map(scan, parts))
            else:
                results = [scan(part) for part in parts]
        for found in results:
            for piece, offset in found:
                hits[int(np.searchsorted(starts, offset, side="right")) - 1, piece] = True
        hits[:, sorted(self._everywhere)] = True
        return hits

    def _scan_run(
        self,
        view: memoryview,
        buf: bytes | mmap.mmap,
        part: list[tuple[int, int]],
        budget: int,
    ) -> tuple[list[tuple[int, int]], int | None]:
        """(piece, start offset in buf) of each hit in the sections `part` ((lo, hi)
        offsets in buf, one vectored scan) of the pieces not known to be
        everywhere, or the piece that passed `budget` hits (the scan stops)."""
        active = tuple(i for i in range(len(self.pieces)) if i not in self._everywhere)
        db, scratch, parts = self._db(active)
        found: list[tuple[int, int]] = []
        counts = [0] * len(self.pieces)
        over: list[int] = []
        # Hyperscan reports offsets in the sections laid end to end: each
        # section's offset there, and where it is in buf.
        joined: list[int] = []
        at = 0
        for lo, hi in part:
            joined.append(at)
            at += hi - lo

        def on_match(n: int, _from: int, to: int, _flags: int, _ctx: object) -> bool:
            piece = active[n]
            whole = self.pieces[piece]
            k = bisect.bisect_right(joined, to - 1) - 1
            # Hyperscan looks for a rare part of the piece: the rest must surround it.
            rare, end = parts[n]
            start = part[k][0] + to - joined[k] - end
            partial = len(rare) != len(whole)
            if partial and (start < 0 or buf[start : start + len(whole)] != whole):
                return False
            found.append((piece, start))
            counts[piece] += 1
            if counts[piece] > budget:
                over.append(piece)
                return True  # stops the scan
            return False

        sections = [view[lo:hi] for lo, hi in part]
        try:
            db.scan(sections, match_event_handler=on_match, scratch=scratch)  # type: ignore[type-var]
        except hyperscan.ScanTerminated:
            pass
        finally:
            for section in sections:
                section.release()
        return found, (over[0] if over else None)

    def _db(
        self, active: tuple[int, ...]
    ) -> tuple[hyperscan.Database, hyperscan.Scratch, list[tuple[bytes, int]]]:
        """The active pieces compiled (each as its rare part), a scratch of this
        thread, and each part with where it ends in its piece."""
        known = self._dbs.get(active)
        if known is None:
            parts = [_rare_part(self.pieces[i]) for i in active]
            db = hyperscan.Database(mode=hyperscan.HS_MODE_VECTORED)
            db.compile(
                expressions=[hs_literal(part) for part, _ in parts],
                ids=list(range(len(active))),
                flags=[0] * len(active),
            )
            known = self._dbs[active] = (db, parts)
        db, parts = known
        scratches: dict[tuple[int, ...], hyperscan.Scratch] | None = getattr(
            self._local, "scratch", None
        )
        if scratches is None:
            scratches = self._local.scratch = {}
        scratch = scratches.get(active)
        if scratch is None:
            scratch = scratches[active] = hyperscan.Scratch(db)
        return db, scratch, parts

    def _common_holders(self, files: TermFiles) -> dict[bytes, list[int]]:
        """The segment's common terms that hold a piece, and which pieces."""
        memo = self._holders
        out: dict[bytes, list[int]] = {}
        for term in files.all_common():
            pieces = memo.get(term)
            if pieces is None:
                pieces = memo[term] = [i for i, p in enumerate(self.pieces) if p in term]
            if pieces:
                out[term] = pieces
        return out

    def _rows(self, files: TermFiles, record: int, held: list[list[int]]) -> I64:
        """The chunk's matching rows (0-based) from the bitmaps of the common terms
        holding the pieces (only when no other term holds one)."""
        sections = post_sections(files.records[record : record + 1])
        count = int(files.records[record]["count"])
        width, maps_at = int(sections["width"][0]), int(sections["bitmaps"][0])
        acc: npt.NDArray[np.uint8] | None = None
        for cond in self.conditions:
            union = np.zeros(width, np.uint8)
            for i in cond:
                for n in held[i]:
                    at = maps_at + n * width
                    union |= np.frombuffer(files.posts[at : at + width], np.uint8)
            acc = union if acc is None else acc & union
        assert acc is not None
        return np.flatnonzero(np.unpackbits(acc)[:count]).astype(np.int64)


@dataclass(slots=True)
class Decision:
    """A group of chunks split by the token index."""

    scan: list[int] = field(default_factory=list)  # chunk numbers to scan as before
    rows: list[I64] = field(default_factory=list)  # absolute rows answered from bitmaps
    skipped: int = 0  # chunks the index ruled out


def _parts(
    lows: I64, ends: I64, wanted: npt.NDArray[np.bool_], most: int
) -> list[list[tuple[int, int]]]:
    """The wanted records' sections to scan ((lo, hi) in X.terms), in parts of
    about `most` bytes (one vectored scan each, a part per scan thread)."""
    k = np.flatnonzero(wanted)
    if not len(k):
        return []
    lo, hi = lows[k], ends[k]
    size = hi - lo
    part = (np.cumsum(size) - size) // most  # by where each section starts
    cuts = [0, *(np.flatnonzero(np.diff(part)) + 1).tolist(), len(k)]
    los, his = lo.tolist(), hi.tolist()
    return [list(zip(los[a:b], his[a:b], strict=True)) for a, b in itertools.pairwise(cuts)]


def _length_offsets(files: TermFiles, at: I64, length: I64) -> I64:
    """Per record numbered in `at`: where in its term list the terms of `length`
    (per record, 0..MAX_LENGTH) bytes or more start (terms.length_offsets)."""
    where = files.columns()["lengths"][at] + 4 * length
    posts = np.frombuffer(files.posts, np.uint8)
    raw = posts[where[:, None] + np.arange(4)]
    offsets: I64 = raw.view("<u4").ravel().astype(np.int64)
    return offsets


def _in_bloom(files: TermFiles, at: I64, h: np.uint64) -> npt.NDArray[np.bool_]:
    """Per record numbered in `at`: whether its bloom filter may hold the term hashed `h`."""
    cols = files.columns()
    bits = cols["bloom_bits"][at].astype(np.uint64)
    posts = np.frombuffer(files.posts, np.uint8)
    probes = bloom_positions(np.full(len(at), h, np.uint64), np.maximum(bits, 1))
    byte = cols["bloom"][at][:, None] + (probes >> np.uint64(3)).astype(np.int64)
    bit = (posts[byte] >> (probes & np.uint64(7)).astype(np.uint8)) & 1
    in_bloom: npt.NDArray[np.bool_] = bit.all(axis=1) & (bits > 0)
    return in_bloom


def _rare_part(piece: bytes) -> tuple[bytes, int]:
    """What Hyperscan looks for, and where it ends in the piece: the longest part
    between `-` and `_` when it has 4+ bytes (`req-240997` -> `240997`,
    `34989f8f-4db3-ae28` -> `34989f8f`), else the piece. Ids share their
    prefix, and a literal keyed on `req-` meets a candidate in every other term
    (1.3 GB/s there, against 4.8 for `240997`); a short last part like `7620`
    is in many other ids."""
    best, end, at = piece, len(piece), 0
    longest = 0
    for part in re.split(rb"[-_]", piece):
        if len(part) >= 4 and len(part) >= longest:
            longest, best, end = len(part), part, at + len(part)
        at += len(part) + 1
    return (best, end) if longest else (piece, len(piece))
