"""A store's data directory built in process, as the server's processes build it:
segments written, then the event index (the indexer process's work), then the
token index and the segments' filters (the token-index process's)."""

from __future__ import annotations

import time
from pathlib import Path

from logcaster.event import Event
from logcaster.parsing.parse import parse_event
from logcaster.pipeline.batch import Batch
from logcaster.segments.writer import SegmentWriter
from logcaster.store.indexer import StoreIndexer
from logcaster.store.term_indexer import TermIndexer


def token_index(directory: Path, chunk_bytes: int) -> None:
    """Build what is left of the token index and the segments' filters."""
    terms = TermIndexer(directory, fsync=False, chunk_bytes=chunk_bytes)
    while terms.run(time.monotonic() + 5):
        pass
    terms.close()


def batches_of(lines: list[bytes], received: float, step: float, per: int = 200) -> list[Batch]:
    """`lines` as batches of `per` from id 1, the batch at line a received at
    `received + a * step`."""
    return [
        Batch(1 + a, received + a * step, "tcp:x", lines[a : a + per])
        for a in range(0, len(lines), per)
    ]


def build_store(
    directory: Path, batches: list[Batch], *, max_bytes: int, chunk_bytes: int
) -> list[Event]:
    """Write `batches` into segments of about `max_bytes`, index them all (chunks of
    `chunk_bytes`), and return their events as the parser sees them."""
    with SegmentWriter(directory, fsync="never", max_bytes=max_bytes) as writer:
        writer.write_many(batches)
    count = sum(len(b.texts) for b in batches)
    indexer = StoreIndexer(directory, fsync=False, chunk_bytes=chunk_bytes)
    indexer.catch_up(count, tail=True)
    indexer.close()
    token_index(directory, chunk_bytes)
    return [
        parse_event(b.first_id + i, b.received_at, b.source, t)
        for b in batches
        for i, t in enumerate(b.texts)
    ]
