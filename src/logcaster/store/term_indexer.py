"""Build the token index (store/terms.py) of chunks that can no longer grow.

The work of the token-index process (store/term_process.py), which runs at a
lower CPU priority than the server and the indexer process: the index that
makes events queryable (ts/level/service) always comes first, and the token
index follows, chunk by chunk, with the CPU they leave. A chunk is final once
it is full (`chunk_bytes` of text), once a later chunk follows it, or once its
segment is rotated and indexed to its end; only final chunks get a token
record, so no record is ever rewritten. A chunk without one is scanned by
queries, as before. Once every chunk of a rotated segment has its record, the
segment gets its filter of whole terms (store/segment_bloom.py), which lets a
lookup pass over the segment in a few byte reads.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import BinaryIO

import numpy as np

from logcaster.log import log_event
from logcaster.store.catalog import SegmentRef, active_first_id_of, index_base, list_segments
from logcaster.store.chunks import CHUNK_BYTES, StoreFormatError, iter_chunks
from logcaster.store.index import CHUNKS_SUFFIX, SegmentIndex, load_index
from logcaster.store.segment_bloom import ensure_bloom
from logcaster.store.term_writer import TermWriter
from logcaster.store.terms import build_terms, term_paths

logger = logging.getLogger("logcaster.store.terms")
_TRIES = 3  # reads of a chunk that do not give it before it is left to the scan


class TermIndexer:
    """Token indexes of every segment of a data directory (one process owns them)."""

    def __init__(self, directory: Path, *, fsync: bool = True, chunk_bytes: int = CHUNK_BYTES):
        self.directory = directory
        self.fsync = fsync
        self.chunk_bytes = chunk_bytes
        self._writers: dict[int, TermWriter] = {}
        self._done: set[int] = set()  # first ids of rotated segments fully token-indexed
        # first id -> (size of .chunks, active) when nothing was left to do
        self._seen: dict[int, tuple[int, bool]] = {}
        self._skip: set[tuple[int, int]] = set()  # (segment, chunk first id) not indexable
        self._tries: dict[tuple[int, int], int] = {}  # reads that did not give the chunk
        self.indexed = 0  # chunks token-indexed by this process

    def run(self, deadline: float) -> bool:
        """Index final chunks until `deadline` (time.monotonic(); at least one chunk
        when there is one); whether work is left."""
        refs = [r for r in list_segments(self.directory) if not r.compressed]
        listed = {r.first_id for r in refs}
        for first in [f for f in self._writers if f not in listed]:
            self._writers.pop(first).close()  # retention deleted it
        self._done &= listed
        self._seen = {f: size for f, size in self._seen.items() if f in listed}
        self._skip = {key for key in self._skip if key[0] in listed}
        self._tries = {key: n for key, n in self._tries.items() if key[0] in listed}
        for ref in refs:
            if ref.first_id in self._done:
                continue
            try:
                if self._segment(ref, deadline):
                    return True
            except FileNotFoundError:
                continue  # rotated or deleted since the listing; the next call sees it
            except StoreFormatError:
                self._done.add(ref.first_id)  # the event index skips it too
        return False

    def _segment(self, ref: SegmentRef, deadline: float) -> bool:
        """Index the final chunks of one segment; whether time ran out first."""
        first = ref.first_id
        base = index_base(self.directory, first)
        size = base.with_name(base.name + CHUNKS_SUFFIX).stat().st_size
        if self._seen.get(first) == (size, ref.active):
            return False  # nothing changed since it was last done
        index = load_index(base)
        # Rotated and indexed to its end: its last chunk is final too.
        complete = not ref.active and index.byte_end == ref.path.stat().st_size
        chunks = index.chunks
        writer = self._writers.get(first)
        if writer is not None and not term_paths(base)[2].exists():
            writer.close()  # its files were deleted (the index was rebuilt): start over
            del self._writers[first]
            writer = None
        if writer is None and len(chunks):
            writer = self._writers[first] = TermWriter(base, fsync=self.fsync)
        todo = np.flatnonzero(chunks["first_id"] >= writer.next_id).tolist() if writer else []
        with open(ref.path, "rb") as f:
            if ref.active and active_first_id_of(f) != first:
                return False  # rotated since the listing: the next call has its new name
            for n in todo:
                assert writer is not None
                chunk = chunks[n]
                last = n == len(chunks) - 1
                full = int(chunk["byte_end"]) - int(chunk["byte_start"]) >= self.chunk_bytes
                if last and not (full or complete):
                    break  # may still grow
                text = self._text(f, index, n, first)
                if text is None:
                    if (first, int(chunk["first_id"])) not in self._skip:
                        return False  # read again next time, before any later chunk
                    continue
                writer.append(
                    int(chunk["first_id"]),
                    int(chunk["count"]),
                    build_terms(text, int(chunk["count"])),
                )
                self.indexed += 1
                if time.monotonic() >= deadline:
                    return True
        if complete:
            done = self._writers.pop(first, None)
            if done is not None:
                done.close()
            # Every chunk token-indexed: the segment's filter of whole terms. Only
            # speed depends on it: a failure to write it (a full disk) is logged,
            # and the next start of the process tries again.
            try:
                ensure_bloom(base, chunks, ref.path.stat().st_size)
            except FileNotFoundError:
                raise  # the segment went meanwhile (`run` moves on)
            except OSError as exc:
                log_event(
                    logger,
                    logging.WARNING,
                    "store_segment_filter_failed",
                    segment_first_id=first,
                    error=str(exc),
                )
            self._done.add(first)
        else:
            self._seen[first] = (size, ref.active)
        return False

    def _text(self, f: BinaryIO, index: SegmentIndex, n: int, first: int) -> bytes | None:
        """Chunk `n`'s joined payload, read again from its first block; None when the
        blocks read are not the chunk (given up after a few tries: scanned)."""
        chunk = index.chunks[n]
        chunk_first, count = int(chunk["first_id"]), int(chunk["count"])
        key = (first, chunk_first)
        if key in self._skip:
            return None
        blocks = index.blocks
        at = int(np.searchsorted(blocks["first_id"], chunk_first))
        if at < len(blocks) and int(blocks["first_id"][at]) == chunk_first:
            start = int(blocks["header_offset"][at])
            last_id = chunk_first + count - 1
            for part in iter_chunks(
                Path(f.name), start=start, max_id=last_id, chunk_bytes=self.chunk_bytes, file=f
            ):
                if part.first_id == chunk_first and part.count == count:
                    return b"".join(part.payloads)
                break
            tries = self._tries[key] = self._tries.get(key, 0) + 1
            if tries < _TRIES:
                return None
        # No block table entry, or never the chunk indexed: queries scan it.
        log_event(logger, logging.WARNING, "store_terms_skip", chunk_first_id=chunk_first)
        self._skip.add(key)
        self._tries.pop(key, None)
        return None

    def close(self) -> None:
        for first in list(self._writers):
            self._writers.pop(first).close()
