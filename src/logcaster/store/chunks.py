"""Cut a segment's blocks into the store's chunks (docs/store-design.md).

A chunk is a run of whole raw-mode blocks with consecutive ids, about
`chunk_bytes` of text: the unit the index summarizes and a scan skips or
reads. The payloads stay as stored (escaped lines, one event per line), so
the scanner searches the file's own bytes and each line's offset in the
segment identifies its event.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from logcaster.parsing.line_shapes import offsets_of
from logcaster.segments.segment import RawBlock, iter_raw_blocks

CHUNK_BYTES = 1 << 20
MAX_SEGMENT_BYTES = (1 << 32) - 1  # line offsets are uint32 in the index


class StoreFormatError(ValueError):
    """A segment the store cannot index (a JSON-mode block, a file too large)."""


@dataclass(frozen=True, slots=True)
class ChunkText:
    first_id: int
    ranges: list[tuple[int, int]]  # payload byte ranges in the segment (headers excluded)
    payloads: list[bytes]  # the blocks' payloads, escaped lines
    line_offsets: npt.NDArray[np.uint32]  # each event line's start in the segment
    received: npt.NDArray[np.float64]  # each event's batch receive time
    sources: list[tuple[int, str]]  # (index of the first event, source) per block
    block_ids: npt.NDArray[np.uint64]  # each block's first event id
    block_offsets: npt.NDArray[np.uint64]  # each block's header line offset in the segment

    @property
    def count(self) -> int:
        return len(self.line_offsets)

    @property
    def last_id(self) -> int:
        return self.first_id + self.count - 1

    @property
    def byte_start(self) -> int:
        return self.ranges[0][0]

    @property
    def byte_end(self) -> int:
        return self.ranges[-1][1]


def _line_starts(block: RawBlock) -> npt.NDArray[np.uint32]:
    # Every line ends in b"\n": starts are 0 and one past each newline but the last.
    ends = offsets_of(block.payload, 10, len(block.payload))
    starts = np.empty(len(ends), np.int64)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    return (starts + block.payload_offset).astype(np.uint32)


def iter_chunks(
    segment: Path,
    *,
    start: int = 0,
    end: int | None = None,
    max_id: int | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    partial_tail: bool = True,
    file: BinaryIO | None = None,
) -> Iterator[ChunkText]:
    """The chunks of `segment` from block boundary `start` up to the durable `end`
    (a byte offset) or `max_id` (the durable id).

    With `partial_tail=False` the last chunk is left out unless it is full: a
    segment still being written is indexed in whole chunks only (see `file` in
    `iter_raw_blocks`).
    """
    pending: list[RawBlock] = []
    size = 0
    for block in iter_raw_blocks(segment, start=start, end=end, max_id=max_id, file=file):
        header = block.header
        if header.mode != "raw":
            raise StoreFormatError(f"{segment}: the store needs persist.format raw")
        if block.payload_offset + len(block.payload) > MAX_SEGMENT_BYTES:
            raise StoreFormatError(f"{segment}: over {MAX_SEGMENT_BYTES} bytes")
        if pending:
            last = pending[-1].header
            if header.first_id != last.first_id + last.count or size >= chunk_bytes:
                yield _chunk(pending)
                pending, size = [], 0
        pending.append(block)
        size += len(block.payload)
    if pending and (partial_tail or size >= chunk_bytes):
        yield _chunk(pending)


def _chunk(blocks: list[RawBlock]) -> ChunkText:
    counts = [b.header.count for b in blocks]
    sources: list[tuple[int, str]] = []
    at = 0
    for block, n in zip(blocks, counts, strict=True):
        sources.append((at, block.header.source))
        at += n
    return ChunkText(
        first_id=blocks[0].header.first_id,
        ranges=[(b.payload_offset, b.payload_offset + len(b.payload)) for b in blocks],
        payloads=[b.payload for b in blocks],
        line_offsets=np.concatenate([_line_starts(b) for b in blocks]),
        received=np.repeat(np.array([b.header.received for b in blocks]), counts),
        sources=sources,
        block_ids=np.array([b.header.first_id for b in blocks], np.uint64),
        block_offsets=np.array([b.payload_offset - b.header.length for b in blocks], np.uint64),
    )
