"""One bloom filter per segment of every whole term its token index holds.

Why: a lookup of a field value (`request_id=req-42`, `trace_id=…`) asked every
segment's chunk filters for it, about 100 us of numpy a segment, so lookups grew
with history (1.5 -> 5 ms from 1M to 20M events). With one filter per segment
a segment that cannot hold the value costs a few byte reads (one a probe, six
at most); its chunks are looked at only when the filter may hold every value.

What it holds: every term of the segment's chunk filters and common-term lists
(store/terms.py `build_terms`: the terms, a term's rest after an escape letter,
the ASCII runs of terms with other bytes), hashed and probed as the chunk
filters are (`term_hashes`, `bloom_positions`): 10 bits a distinct term, but at
most 1/100 of the segment's text (the default bench corpus: 1.17M distinct
terms in a 100 MB segment, 7.1 bits each, 5 probes, 3.1% false hits). Derived
from the segment's token files alone, so it can be built again at any time.

Who writes it: the token-index process, once a rotated segment has a token
record for every chunk (store/term_indexer.py); never for a segment with a
chunk left to the scan, whose terms the filter would miss. File `X.sbloom`
(`replace_durably`): a header (magic, version, bits, probes, distinct terms,
CRC32C of the filter) and the filter, bit p at byte p >> 3, bit p & 7. A reader
uses a file only if its size and CRC hold (`SegmentBlooms`); a bad one is
ignored (the chunk filters answer) and rebuilt by the token process.
"""

from __future__ import annotations

import math
import mmap
import os
import re
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import google_crc32c
import numpy as np
import numpy.typing as npt

from logcaster.durable_file import replace_durably
from logcaster.store.term_views import TermFiles, load_terms
from logcaster.store.terms import (
    ASCII_RUNS,
    BLOOM_BITS_PER_TERM,
    BLOOM_PROBES,
    ESCAPE_LETTERS,
    SEGMENT_BLOOM_SUFFIX,
    bloom_positions,
    term_hashes,
    term_paths,
)

_MAGIC = b"LCSBLOOM"
_VERSION = 1
_HEADER = struct.Struct("<8sIQIQI")  # magic, version, bits, probes, terms, crc32c
_M64 = (1 << 64) - 1
_AFTER_ESCAPE = re.compile(rb"\n[nr]([^\n]+)")  # a listed term's rest after an escape letter
_MAX_SHARE = 100  # the filter is at most 1/100 of the segment's text
_SLICE = 1 << 16  # hashes turned into bit positions at a time (bounded temporaries)
_RECHECK_S = 1.0  # a segment without a usable filter is looked at again this often


def bloom_path(base: Path) -> Path:
    return base.with_name(base.name + SEGMENT_BLOOM_SUFFIX)


def _whole_terms(listed: bytes, common: list[bytes]) -> list[bytes]:
    """What the chunk filters and common lists of a chunk hold, and more (a superset
    only costs bits): its listed terms (`listed`, the b"\\n"-framed term list), its
    common ones, a term's rest after an escape letter, and the ASCII runs of terms
    with other bytes. C-speed passes over the list; Python only for the few others."""
    terms = listed.split(b"\n")
    terms += common
    terms += _AFTER_ESCAPE.findall(listed)
    terms += [t[1:] for t in common if len(t) > 1 and t[0] in ESCAPE_LETTERS]
    if not listed.isascii() or not all(t.isascii() for t in common):
        terms += [r for t in terms if not t.isascii() for r in ASCII_RUNS.findall(t)]
    return [t for t in terms if t]


def chunk_hashes(base: Path, files: TermFiles) -> Iterator[npt.NDArray[np.uint32]]:
    """Per token record, the hashes of the whole terms it holds (`_whole_terms`).
    Each term list is read (pread), not touched through the reader's mapping: the
    token process's resident size grows by one list, not by the file."""
    cols = files.columns()
    fd = os.open(term_paths(base)[0], os.O_RDONLY)
    try:
        for record in range(len(files.records)):
            start, end = int(cols["terms_start"][record]), int(cols["terms_end"][record])
            listed = os.pread(fd, end - start, start)
            common = list(files.common_index(record))
            # CRC-32 values: 4 bytes each while a segment's are gathered and sorted.
            yield term_hashes(_whole_terms(listed, common)).astype(np.uint32)
    finally:
        os.close(fd)


def build_bloom(base: Path, files: TermFiles, text_bytes: int) -> tuple[bytes, int, int]:
    """The filter of the token index at `base` (`files`, verified): (filter, probes,
    distinct terms). At BLOOM_BITS_PER_TERM a term, but no more than 1% of the
    segment's text (`text_bytes`): fewer bits a term on text of many distinct ones,
    the probes fitted to them (ln 2 x bits a term)."""
    parts = list(chunk_hashes(base, files))
    hashes = np.concatenate(parts) if parts else np.zeros(0, np.uint32)
    del parts
    hashes.sort()
    if len(hashes):
        # Distinct hashes (np.unique's hash table took 6x as long as this sort).
        hashes = hashes[np.concatenate(([True], hashes[1:] != hashes[:-1]))]
    size = min(len(hashes) * BLOOM_BITS_PER_TERM, text_bytes * 8 // _MAX_SHARE)
    size = max(64, -(-size // 64) * 64)
    probes = min(BLOOM_PROBES, max(1, round(size / max(1, len(hashes)) * math.log(2))))
    bits = np.zeros(size, np.bool_)
    width = np.array(size, np.uint64)
    for at in range(0, len(hashes), _SLICE):
        at_bits = bloom_positions(hashes[at : at + _SLICE].astype(np.uint64), width)[:, :probes]
        bits[at_bits.ravel().astype(np.int64)] = True
    return np.packbits(bits, bitorder="little").tobytes(), probes, len(hashes)


def ensure_bloom(base: Path, chunks: npt.NDArray[np.void], text_bytes: int) -> bool:
    """Write the filter of the segment at `base` (its chunk table `chunks`, its text
    `text_bytes` long) unless a whole one is there; whether one is there after.
    None is written while a chunk has no token record: the filter would miss that
    chunk's terms, and rule the segment out for a value only it holds."""
    if bloom_ok(base):
        return True
    files = load_terms(base)
    records = files.records
    if len(records) != len(chunks) or not (
        np.array_equal(records["first_id"], chunks["first_id"])
        and np.array_equal(records["count"], chunks["count"])
    ):
        return False
    bloom, probes, terms = build_bloom(base, files, text_bytes)
    crc = google_crc32c.value(bloom)
    header = _HEADER.pack(_MAGIC, _VERSION, len(bloom) * 8, probes, terms, crc)
    replace_durably(bloom_path(base), header + bloom)
    return True


def bloom_ok(base: Path) -> bool:
    """Whether the segment's filter file is whole (size and CRC)."""
    try:
        with open(bloom_path(base), "rb") as f:
            return _verified(f) is not None
    except OSError:
        return False


def _verified(f: BinaryIO) -> tuple[int, int] | None:
    """The filter's size in bits and its probes, if the open file is whole (header,
    size, CRC; read, not mapped: probes later touch only the pages they read)."""
    head = f.read(_HEADER.size)
    if len(head) < _HEADER.size:
        return None
    magic, version, bits, probes, _terms, crc = _HEADER.unpack(head)
    if magic != _MAGIC or version != _VERSION or not 0 < probes <= BLOOM_PROBES or not bits:
        return None
    body = f.read()
    if len(body) * 8 != bits or google_crc32c.value(body) != crc:
        return None
    return bits, probes


def _mapped(path: Path) -> tuple[mmap.mmap, int, int] | None:
    """The mapped file, its filter's size in bits and its probes, if it is whole."""
    try:
        with open(path, "rb") as f:
            shape = _verified(f)
            if shape is None:
                return None
            return mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ), *shape
    except (OSError, ValueError):  # missing, unreadable: the chunk filters answer
        return None


def may_hold(data: mmap.mmap, bits: int, probes: int, hashes: list[int]) -> bool:
    """Whether the filter (`bits` wide, after the header in `data`) may hold every
    hashed term: the first `probes` positions of `bloom_positions`, in Python (a
    few per segment)."""
    for h in hashes:
        step = (((h * 0x9E3779B1) & _M64) >> 16) | 1
        for i in range(probes):
            p = ((h + i * step) & _M64) % bits
            if not (data[_HEADER.size + (p >> 3)] >> (p & 7)) & 1:
                return False
    return True


@dataclass(frozen=True, slots=True)
class _Unusable:
    at: float  # time.monotonic() of the look
    stamp: tuple[int, int, int] | None  # size, mtime, inode of the file seen (None: none)


class SegmentBlooms:
    """The segments' filters as queries read them; thread-safe. A segment without
    a usable filter (active, not yet token-indexed, damaged) is looked at again
    after a second, so a new filter is used soon after it is written; a damaged
    file is read again only once it changed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # A usable filter (mapped file, bits, probes), or when a segment had none
        # and the stat of what was there (None: no file).
        self._cache: dict[Path, tuple[mmap.mmap, int, int] | _Unusable] = {}
        self.ruled_out = 0  # segments a lookup skipped by their filter (the tests read it)

    def rules_out(self, base: Path, hashes: list[int]) -> bool:
        """True when the segment at `base` has a filter and it lacks one of `hashes`
        (a lookup then skips the segment)."""
        if not self.lacks(base, hashes):
            return False
        with self._lock:
            self.ruled_out += 1
        return True

    def lacks(self, base: Path, hashes: list[int]) -> bool:
        """Whether the segment at `base` has a filter and it lacks one of `hashes`."""
        with self._lock:
            entry = self._cache.get(base)
            if entry is None or isinstance(entry, _Unusable):
                entry = self._cache[base] = self._look(base, entry)
        return not isinstance(entry, _Unusable) and not may_hold(*entry, hashes)

    @staticmethod
    def _look(base: Path, last: _Unusable | None) -> tuple[mmap.mmap, int, int] | _Unusable:
        now = time.monotonic()
        if last is not None and now - last.at < _RECHECK_S:
            return last
        path = bloom_path(base)
        try:
            st = path.stat()
            stamp: tuple[int, int, int] | None = (st.st_size, st.st_mtime_ns, st.st_ino)
        except FileNotFoundError:
            stamp = None
        if stamp is None or (last is not None and stamp == last.stamp):
            return _Unusable(now, stamp)  # none yet, or the same damaged file
        return _mapped(path) or _Unusable(now, stamp)

    def forget(self, keep: set[Path]) -> None:
        """Drop the segments not in `keep` (retention deleted them)."""
        with self._lock:
            for base in set(self._cache) - keep:
                del self._cache[base]
