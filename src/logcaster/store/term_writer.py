"""Append chunks' token indexes to a segment's files (store/terms.py has the format)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from logcaster.durable_file import write_at
from logcaster.store.term_views import load_terms
from logcaster.store.terms import (
    BODY_SIZE,
    TERM_DTYPE,
    TERM_LAYOUT,
    ChunkTerms,
    body_crc,
    posts_size_of,
    term_paths,
)


class TermWriter:
    """Appends chunks' token indexes to one segment's files (the indexer process owns it)."""

    def __init__(self, base: Path, *, fsync: bool = True) -> None:
        self.fsync = fsync
        loaded = load_terms(base)
        last = loaded.records[-1] if len(loaded.records) else None
        self.next_id = int(last["first_id"]) + int(last["count"]) if last is not None else 0
        self._terms_end = int(last["terms_end"]) if last is not None else 0
        self._posts_end = int(last["posts_start"]) + posts_size_of(last) if last is not None else 0
        self._records = len(loaded.records)
        paths = term_paths(base)
        self._fds = [os.open(p, os.O_RDWR | os.O_CREAT, 0o644) for p in paths]
        # Cut what the verification did not accept (a torn tail).
        sizes = (self._terms_end, self._posts_end, self._records * TERM_DTYPE.itemsize)
        for fd, size in zip(self._fds, sizes, strict=True):
            os.ftruncate(fd, size)

    def append(self, first_id: int, count: int, chunk: ChunkTerms) -> None:
        if first_id < self.next_id:
            raise ValueError(f"token index of id {first_id}: not above {self.next_id - 1}")
        terms_fd, posts_fd, records_fd = self._fds
        common = b"\n".join(chunk.common)
        record = np.zeros(1, TERM_DTYPE)
        r = record[0]
        r["first_id"], r["count"] = first_id, count
        r["terms_start"] = self._terms_end
        r["terms_end"] = self._terms_end + len(chunk.terms)
        r["posts_start"] = self._posts_end
        r["common_bytes"], r["common"] = len(common), len(chunk.common)
        r["bloom_bits"] = len(chunk.bloom) * 8
        r["layout"] = TERM_LAYOUT
        r["crc"] = body_crc(record.tobytes()[:BODY_SIZE])
        write_at(terms_fd, self._terms_end, chunk.terms)
        posts = common + chunk.bitmaps + chunk.bloom + chunk.plain + chunk.lengths
        write_at(posts_fd, self._posts_end, posts)
        if self.fsync:
            os.fsync(terms_fd)
            os.fsync(posts_fd)
        write_at(records_fd, self._records * TERM_DTYPE.itemsize, record.tobytes())
        if self.fsync:
            os.fsync(records_fd)
        self._terms_end = int(r["terms_end"])
        self._posts_end += len(posts)
        self._records += 1
        self.next_id = first_id + count

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
