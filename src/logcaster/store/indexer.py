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

import os
from pathlib import Path

from logcaster.storage.writer import fsync_dir
from logcaster.store.chunks import CHUNK_BYTES, iter_chunks
from logcaster.store.extract import Extractor, ServiceCodes
from logcaster.store.index import ChunkRows, IndexWriter

SERVICES_NAME = "services.json"


def load_services(directory: Path) -> ServiceCodes:
    """The store's service dictionary (empty if none was saved yet)."""
    path = directory / SERVICES_NAME
    if not path.exists():
        return ServiceCodes()
    return ServiceCodes.from_json(path.read_bytes())


def save_services(directory: Path, services: ServiceCodes) -> None:
    """Write the dictionary atomically: temp file, fsync, rename, fsync the directory."""
    path = directory / SERVICES_NAME
    tmp = path.with_name(path.name + ".tmp")
    data = services.to_json().encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)
    fsync_dir(directory)


class SegmentIndexer:
    """Indexes one segment incrementally; owns its IndexWriter."""

    def __init__(
        self,
        segment: Path,
        extractor: Extractor,
        *,
        fsync: bool = True,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self.segment = segment
        self.extractor = extractor
        self.fsync = fsync
        self.chunk_bytes = chunk_bytes
        self.writer = IndexWriter(segment, fsync=fsync)

    @property
    def last_id(self) -> int | None:
        return self.writer.last_id

    def catch_up(self, end: int | None = None) -> int:
        """Index every whole block up to byte `end` (None: the file's end); events added."""
        added = 0
        services = self.extractor.services
        directory = self.segment.parent
        for chunk in iter_chunks(
            self.segment, start=self.writer.byte_end, end=end, chunk_bytes=self.chunk_bytes
        ):
            known = len(services)
            fields = self.extractor.extract(b"".join(chunk.payloads), chunk.received)
            if len(services) != known:
                save_services(directory, services)
            self.writer.append(
                ChunkRows(
                    first_id=chunk.first_id,
                    byte_start=chunk.byte_start,
                    byte_end=chunk.byte_end,
                    ts=fields.ts,
                    offset=chunk.line_offsets,
                    service=fields.service,
                    level=fields.level,
                    own_ts=fields.ts != chunk.received,
                )
            )
            added += chunk.count
        return added

    def close(self) -> None:
        self.writer.close()
