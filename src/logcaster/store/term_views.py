"""The token index as queries read it: verified records and mapped sections.

`load_terms` reads one segment's token index files (store/terms.py) and keeps
the records whose CRC holds and whose sections lie in the files; `TermViews`
keeps them per segment for the reader, read again when records were added
(the parsed common-term lists carry over: records are only ever appended).
"""

from __future__ import annotations

import mmap
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from logcaster.store.catalog import index_file
from logcaster.store.terms import (
    BODY_SIZE,
    TCHUNKS_SUFFIX,
    TERM_DTYPE,
    TERM_LAYOUT,
    body_crc,
    post_sections,
    posts_size_of,
    term_paths,
)

_MAPPINGS = 8  # chunk tables (cut at different high-water ids) remembered per segment


@dataclass(slots=True)
class TermFiles:
    """The verified token index of one segment: records and mapped sections."""

    records: npt.NDArray[np.void]  # TERM_DTYPE, verified
    terms: bytes | mmap.mmap
    posts: bytes | mmap.mmap
    records_size: int  # bytes of X.tchunks when read (a reader re-reads when it grows)
    stamp: tuple[int, int, int] = (0, 0, 0)  # size, mtime, inode of X.tchunks when read
    _common: dict[int, dict[bytes, int]] = field(default_factory=dict)
    # (chunks, last id, last count) of a chunk table -> chunk number -> record
    mappings: dict[tuple[int, int, int], dict[int, int]] = field(default_factory=dict)
    _all_common: set[bytes] | None = None
    _columns: dict[str, npt.NDArray[np.int64]] | None = None

    def columns(self) -> dict[str, npt.NDArray[np.int64]]:
        """Per record, as int64: where its sections are (terms.post_sections), its
        term list's start and end, and its bloom filter's size (computed once)."""
        if self._columns is None:
            cols = post_sections(self.records)
            for name in ("terms_start", "terms_end", "bloom_bits"):
                cols[name] = self.records[name].astype(np.int64)
            self._columns = cols
        return self._columns

    def common_index(self, record: int) -> dict[bytes, int]:
        """A record's common terms and their bitmap numbers (parsed once, then kept)."""
        index = self._common.get(record)
        if index is None:
            rec = self.records[record]
            at = int(rec["posts_start"])
            raw = bytes(self.posts[at : at + int(rec["common_bytes"])])
            index = {t: n for n, t in enumerate(raw.split(b"\n"))} if raw else {}
            self._common[record] = index
        return index

    def all_common(self) -> set[bytes]:
        """Every record's common terms (a segment has a few hundred distinct ones)."""
        if self._all_common is None:
            terms: set[bytes] = set()
            for record in range(len(self.records)):
                terms.update(self.common_index(record))
            self._all_common = terms
        return self._all_common


def load_terms(base: Path) -> TermFiles:
    """Read and verify the token index at `base` (missing files: empty).

    Stops at the first record whose CRC fails, that is of another layout (files
    of an older one are rebuilt: the writer cuts what is not read here), whose
    sections are not in the files, or that does not follow the previous one."""
    terms_path, posts_path, records_path = term_paths(base)
    try:
        raw = records_path.read_bytes()
        terms_size = terms_path.stat().st_size
        posts_size = posts_path.stat().st_size
    except FileNotFoundError:
        return TermFiles(np.zeros(0, TERM_DTYPE), b"", b"", 0)
    whole = len(raw) // TERM_DTYPE.itemsize
    records = np.frombuffer(raw, TERM_DTYPE, count=whole)
    good = 0
    terms_at = posts_at = 0
    next_id = 0
    for i in range(whole):
        rec = records[i]
        at = i * TERM_DTYPE.itemsize
        if body_crc(raw[at : at + BODY_SIZE]) != int(rec["crc"]):
            break
        if int(rec["layout"]) != TERM_LAYOUT:
            break
        t0, t1, p0 = int(rec["terms_start"]), int(rec["terms_end"]), int(rec["posts_start"])
        p1 = p0 + posts_size_of(rec)
        if t0 < terms_at or t1 < t0 or t1 > terms_size or p0 < posts_at or p1 > posts_size:
            break
        if int(rec["first_id"]) < next_id:
            break
        terms_at, posts_at, next_id = t1, p1, int(rec["first_id"]) + int(rec["count"])
        good = i + 1
    return TermFiles(
        records[:good].copy(),
        _map(terms_path, terms_at),
        _map(posts_path, posts_at),
        len(raw),
    )


def _map(path: Path, size: int) -> bytes | mmap.mmap:
    """The verified part of a file, mapped (a query reads a few sections of it)."""
    if size == 0:
        return b""
    with open(path, "rb") as f:
        return mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ)


class TermViews:
    """Each segment's token index for queries, read again when its records grew."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[Path, TermFiles] = {}

    def get(
        self, base: Path, chunks: npt.NDArray[np.void]
    ) -> tuple[TermFiles, dict[int, int]] | None:
        """(token index, chunk number -> record) of the segment at `base` whose
        chunk table (as the query sees it) is `chunks`; None if it has none."""
        try:
            st = os.stat(index_file(base, TCHUNKS_SUFFIX))
        except FileNotFoundError:
            return None
        # Size alone would miss a torn tail cut and a record written in its place.
        stamp = (st.st_size, st.st_mtime_ns, st.st_ino)
        with self._lock:
            files = self._cache.get(base)
            if files is None or files.stamp != stamp:
                fresh = load_terms(base)
                fresh.stamp = stamp
                same_file = files is not None and files.stamp[2] == stamp[2]
                if files is not None and same_file and len(fresh.records) >= len(files.records):
                    fresh._common = files._common  # the same records, and more
                self._cache[base] = files = fresh
        records = files.records
        if not len(records) or not len(chunks):
            return None
        # One query asks once per group of chunks: the mapping is kept per table.
        key = (len(chunks), int(chunks["first_id"][-1]), int(chunks["count"][-1]))
        known = files.mappings.get(key)
        if known is not None:
            return files, known
        at = np.searchsorted(chunks["first_id"], records["first_id"])
        inside = at < len(chunks)
        at_in = at[inside]
        same = (chunks["first_id"][at_in] == records["first_id"][inside]) & (
            chunks["count"][at_in] == records["count"][inside]
        )
        numbers = np.flatnonzero(inside)[same]
        mapping = dict(zip(at_in[same].tolist(), numbers.tolist(), strict=True))
        if len(files.mappings) >= _MAPPINGS:
            files.mappings.clear()
        files.mappings[key] = mapping
        return files, mapping

    def forget(self, keep: set[Path]) -> None:
        """Drop the segments not in `keep` (retention deleted them)."""
        with self._lock:
            for base in set(self._cache) - keep:
                del self._cache[base]


def plain_rows(
    files: TermFiles,
    record_of: dict[int, int],
    chunks: npt.NDArray[np.void],
    rows: npt.NDArray[np.int64],
) -> npt.NDArray[np.int8]:
    """Per row of `rows` (absolute, ascending): 1 if its line is plain, 0 if not, -1
    where the token index of its chunk is not built (store/bulk_rows.py). Only the
    bits of these rows are read: a query asks for the rows that matched."""
    out = np.full(len(rows), -1, np.int8)
    if not len(rows):
        return out
    starts = chunks["row_start"]
    at = np.searchsorted(starts, rows.astype(starts.dtype), side="right") - 1
    numbers, first = np.unique(at, return_index=True)
    records = np.array([record_of.get(int(c), -1) for c in numbers.tolist()], np.int64)
    known = records >= 0
    if not known.any():
        return out
    plain_at = np.zeros(len(numbers), np.int64)
    plain_at[known] = post_sections(files.records[records[known]])["plain"]
    # Runs of rows per chunk: `first` marks where each chunk's rows begin.
    which = np.repeat(np.arange(len(numbers)), np.diff(np.r_[first, len(rows)]))
    mine = known[which]
    bit = rows[mine] - starts[numbers[which[mine]]].astype(np.int64)
    posts = np.frombuffer(files.posts, np.uint8)
    byte = posts[plain_at[which[mine]] + (bit >> 3)]
    out[mine] = (byte >> (7 - (bit & 7)).astype(np.uint8)) & 1
    return out
