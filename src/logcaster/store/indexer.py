"""Bring a segment's index up to date with its durable data (docs/store-design.md).

`SegmentIndexer` reads the blocks written since the index's last chunk, up to
the byte offset the file sink reports durable, cuts them into chunks, extracts
ts/level/service for every event in bulk, and appends rows and summaries to
the index. The service dictionary is saved (atomically, fsynced) before any row
that uses a new code, so a crash never leaves rows pointing at unknown codes.

This is the work of the indexer process; it also runs in-process (tests, the
rebuild after a crash, `logcaster data` tools).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from logcaster.durable_file import replace_durably
from logcaster.log import log_event
from logcaster.parsing.codes import ServiceCodes
from logcaster.parsing.extract import Extractor
from logcaster.segments.names import ACTIVE_NAME, list_rotated, parse_segment_name
from logcaster.sources.files.labels import fill_services
from logcaster.store.catalog import (
    SegmentRef,
    active_first_id,
    active_first_id_of,
    delete_index,
    index_base,
    index_dir,
    list_segments,
)
from logcaster.store.chunks import CHUNK_BYTES, StoreFormatError, iter_chunks
from logcaster.store.index import ChunkRows, IndexWriter, load_index

SERVICES_NAME = "services.json"

logger = logging.getLogger("logcaster.store.indexer")


def load_services(directory: Path) -> ServiceCodes:
    """The store's service dictionary (empty if none was saved yet)."""
    path = directory / SERVICES_NAME
    if not path.exists():
        return ServiceCodes()
    return ServiceCodes.from_json(path.read_bytes())


def save_services(directory: Path, services: ServiceCodes) -> None:
    """Write the dictionary atomically: temp file, fsync, rename, fsync the directory."""
    replace_durably(directory / SERVICES_NAME, services.to_json().encode())


@dataclass(frozen=True, slots=True)
class Progress:
    """What one catch_up did: events added, chunks written, and whether it
    stopped at its `max_chunks` with more to index."""

    added: int = 0
    chunks: int = 0
    stopped: bool = False


class SegmentIndexer:
    """Indexes one segment incrementally; owns its IndexWriter.

    `base` is the path the index files extend (default: the segment's own
    path; the store uses `catalog.index_base`), `services_dir` where the
    service dictionary is saved (default: the segment's directory).
    """

    def __init__(
        self,
        segment: Path,
        extractor: Extractor,
        *,
        base: Path | None = None,
        services_dir: Path | None = None,
        fsync: bool = True,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self.segment = segment
        self.extractor = extractor
        self.fsync = fsync
        self.chunk_bytes = chunk_bytes
        self.services_dir = services_dir if services_dir is not None else segment.parent
        self.writer = IndexWriter(base if base is not None else segment, fsync=fsync)

    @property
    def last_id(self) -> int | None:
        return self.writer.last_id

    def catch_up(
        self,
        end: int | None = None,
        *,
        max_id: int | None = None,
        partial_tail: bool = True,
        file: BinaryIO | None = None,
        max_chunks: int | None = None,
    ) -> Progress:
        """Index every whole block up to byte `end` / id `max_id`.

        `max_chunks`: stop after writing that many chunks (`Progress.stopped`);
        the chunks written are committed together (IndexWriter.batch: one round
        of fsyncs) before it returns, so the next call goes on from there.

        `partial_tail=False` leaves a last chunk that is not full for later (see
        `iter_chunks`); `file` is the segment already open. A last chunk that
        is not full (an idle pass indexed active.log's tail) is read again from
        its start when the segment has grown, and extended in place: chunks
        stay ~1 MiB however often the tail is indexed, and no event is indexed
        twice or skipped.
        """
        writer = self.writer
        start = writer.byte_end
        header = writer.last_header_offset  # a block boundary: the last chunk's first header
        small = writer.byte_end - writer.last_byte_start < self.chunk_bytes
        if header is not None and small and self._grown(file):
            start = header
        with writer.batch():  # one round of fsyncs for the chunks of this call
            return self._index_chunks(start, end, max_id, partial_tail, file, max_chunks)

    def _index_chunks(
        self,
        start: int,
        end: int | None,
        max_id: int | None,
        partial_tail: bool,
        file: BinaryIO | None,
        max_chunks: int | None,
    ) -> Progress:
        writer = self.writer
        added = written = 0
        services = self.extractor.services
        for chunk in iter_chunks(
            self.segment,
            start=start,
            end=end,
            max_id=max_id,
            chunk_bytes=self.chunk_bytes,
            partial_tail=partial_tail,
            file=file,
        ):
            extend = chunk.first_id == writer.last_first_id
            if extend and chunk.count == writer.last_count:
                continue  # the open chunk, not grown yet
            if max_chunks is not None and written >= max_chunks:
                return Progress(added, written, stopped=True)
            written += 1
            known = len(services)
            fields = self.extractor.extract(chunk.payloads, chunk.received)
            fill_services(fields.service, chunk.sources, services)  # file inputs' service
            if len(services) != known:
                save_services(self.services_dir, services)
            put = writer.extend_last if extend else writer.append
            added += chunk.count - (writer.last_count if extend else 0)
            put(
                ChunkRows(
                    first_id=chunk.first_id,
                    byte_start=chunk.byte_start,
                    byte_end=chunk.byte_end,
                    ts=fields.ts,
                    offset=chunk.line_offsets,
                    service=fields.service,
                    level=fields.level,
                    own_ts=fields.ts != chunk.received,
                    block_ids=chunk.block_ids,
                    block_offsets=chunk.block_offsets,
                )
            )
        return Progress(added, written)

    def _grown(self, file: BinaryIO | None) -> bool:
        """Whether the segment holds bytes past the indexed ones."""
        size = os.fstat(file.fileno()).st_size if file is not None else self.segment.stat().st_size
        return size > self.writer.byte_end

    def close(self) -> None:
        self.writer.close()


class StoreIndexer:
    """Keeps the index of every segment of a data directory up to the durable id.

    The indexer process's work (`store/indexer_process.py`). Rotated segments
    are indexed to their end, once; `active.log` in whole chunks up to the
    durable id, and its last partial chunk too when the server asks for the
    tail (`catch_up(..., tail=True)`: the store's `index_delay_ms` passed;
    the memory buffer holds those events meanwhile). Segments are matched to
    their index by first id, so a rotation's rename is seamless.
    """

    def __init__(self, directory: Path, *, fsync: bool = True, chunk_bytes: int = CHUNK_BYTES):
        self.directory = directory
        self.index_dir = index_dir(directory)
        self.index_dir.mkdir(parents=True, exist_ok=True)
        self.extractor = Extractor(load_services(self.index_dir))
        self.fsync = fsync
        self.chunk_bytes = chunk_bytes
        self._open: dict[int, SegmentIndexer] = {}  # by first id: segments not yet complete
        self._complete: set[int] = set()  # first ids of rotated segments fully indexed
        # Open segments a tail pass indexed completely, up to the durable id given.
        self._drained: dict[int, int] = {}
        self.indexed = 0  # events indexed by this process
        self.unfinished = False  # the last catch_up stopped at its max_chunks
        self._not_reached: int | None = None  # the first segment it left untouched

    def remove_orphans(self) -> list[int]:
        """Delete index files whose segment is gone (retention ran while we were down,
        or deleted a segment while the token process was writing one of its files)."""
        present = {ref.first_id for ref in list_segments(self.directory)}
        gone = set()
        for path in self.index_dir.iterdir():
            stem = path.name.split(".", 1)[0]
            if stem.isdigit() and "." in path.name and int(stem) not in present:
                gone.add(int(stem))
        for first in sorted(gone):
            delete_index(self.directory, first)
        return sorted(gone)

    def catch_up(
        self, durable_id: int, *, tail: bool = False, max_chunks: int | None = None
    ) -> int:
        """Index what is durable up to `durable_id`; the events added.

        `tail`: also active.log's last chunk while it is not full. `max_chunks`:
        stop after writing about that many chunks (`self.unfinished` then says
        so), so a caller far behind reports its progress between calls instead
        of after the whole backlog."""
        added = written = 0
        self.unfinished = False
        self._not_reached = None
        refs = list_segments(self.directory)
        missing: set[int] = set()  # segments whose file was not found
        for ref in refs:
            first = ref.first_id
            if first in self._complete:
                continue
            if first > durable_id:
                break
            if ref.compressed:
                log_event(logger, logging.WARNING, "store_skips_compressed", path=str(ref.path))
                self._complete.add(first)
                continue
            if max_chunks is not None and written >= max_chunks:
                self.unfinished = True
                self._not_reached = first  # indexed_to stays below it
                break
            left = None if max_chunks is None else max_chunks - written
            try:
                done = self._catch_up_one(ref, durable_id, tail, left)
                added += done.added
                written += done.chunks
                if done.stopped:
                    self.unfinished = True
                    break
            except StoreFormatError as exc:
                log_event(logger, logging.WARNING, "store_skips_segment", reason=str(exc))
                self._finish(first)
            except FileNotFoundError:
                missing.add(first)  # rotated or deleted since the listing
        listed = {ref.first_id for ref in refs}
        self._complete &= listed  # forget segments retention deleted (bounded by the dir)
        for first in [f for f in self._open if f not in listed or f in missing]:
            if self._gone(first):
                # Retention deleted it before it was indexed to its end: its events
                # are gone, so the high-water id must not wait for them.
                self._finish(first)
                delete_index(self.directory, first)
        self.indexed += added
        return added

    def _gone(self, first: int) -> bool:
        """Whether the segment starting at `first` was deleted (not just renamed).

        active.log is read before the rotated names are listed: a rotation renames
        it in between at worst, and then the listing sees the new name."""
        if active_first_id(self.directory / ACTIVE_NAME) == first:
            return False
        return all(parse_segment_name(p.name) != first for p in list_rotated(self.directory))

    def _catch_up_one(
        self, ref: SegmentRef, durable_id: int, tail: bool, max_chunks: int | None
    ) -> Progress:
        first = ref.first_id
        with open(ref.path, "rb") as f:
            if ref.active and active_first_id_of(f) != first:
                return Progress()  # rotated, and a new active.log took the name: next call
            indexer = self._open.get(first)
            if indexer is None:
                # Created with the segment open: a segment deleted before gets no index.
                indexer = SegmentIndexer(
                    ref.path,
                    self.extractor,
                    base=index_base(self.directory, first),
                    services_dir=self.index_dir,
                    fsync=self.fsync,
                    chunk_bytes=self.chunk_bytes,
                )
                self._open[first] = indexer
            indexer.segment = ref.path
            # A rotated segment is durable to its end (rotation fsyncs it first),
            # and is finished below: index all of it, not only up to `durable_id`,
            # which may still lag behind the rotation.
            max_id = durable_id if ref.active else None
            partial = tail or not ref.active
            done = indexer.catch_up(
                max_id=max_id, partial_tail=partial, file=f, max_chunks=max_chunks
            )
            if done.stopped:
                return done  # neither drained nor finished: the next call goes on
            if partial:
                # Every good block up to the durable id is indexed now.
                self._drained[first] = durable_id
        if not ref.active:
            self._finish(first)
            if not ref.path.exists():
                # Deleted while it was indexed; its index may have been created after
                # the server deleted that: it goes too.
                delete_index(self.directory, first)
        return done

    def indexed_to(self, durable_id: int) -> int:
        """The store's high-water id after `catch_up(durable_id)`: every event up
        to it is indexed, the ones after it wait in active.log's partial chunk.

        A segment a tail pass drained waits for nothing up to `durable_id`, even
        when its last id is below it (ids tail sampling cut are never written)."""
        waiting = [
            first - 1 if indexer.last_id is None else indexer.last_id
            for first, indexer in self._open.items()
            if self._drained.get(first, -1) < durable_id
        ]
        if self._not_reached is not None:
            waiting.append(self._not_reached - 1)
        return min(waiting, default=durable_id)

    def _finish(self, first: int) -> None:
        self._complete.add(first)
        self._drained.pop(first, None)
        indexer = self._open.pop(first, None)
        if indexer is not None:
            indexer.close()

    def close(self) -> None:
        for first in list(self._open):
            self._open.pop(first).close()


def indexed_on_disk(directory: Path) -> int:
    """The high-water id the index files on disk support, without indexing.

    For the server at start, before the indexer process reports: rotated
    segments count while their index reaches the file's end, then the first
    one that does not (or active.log) sets the mark at its last indexed id.
    """
    mark = 0
    for ref in list_segments(directory):
        if ref.compressed:
            continue
        try:
            index = load_index(index_base(directory, ref.first_id))
            size = ref.path.stat().st_size
        except FileNotFoundError:
            continue  # retention deleted it since the listing
        last = index.last_id
        if ref.active or index.byte_end != size:
            return ref.first_id - 1 if last is None else last
        mark = ref.first_id if last is None else last
    return mark
