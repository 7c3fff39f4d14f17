"""Reading and validating a segment file: a sequence of blocks (see `blocks`).

`scan_segment` walks the file block by block and sorts damage into two kinds:

- `TornTail`: a block that fails (unparsable header, short payload, checksum
  mismatch) with no valid block anywhere after it. This is what a crash in the
  middle of a write leaves; truncating the file to `end_of_good` is safe.
- `Corruption`: a block that fails but is followed by a valid block (found by
  searching forward for b"\\n#LC2 " and verifying header and checksum there).
  The damaged bytes are skipped and the scan goes on with the following blocks,
  so callers can still serve them.

Files are read through a buffered file object, one block at a time; memory is
bounded by the largest payload accepted (`max_payload`, default 64 MiB; a header
that announces more counts as a bad header). Paths ending in `.gz` are read
through `gzip`; offsets are then offsets in the uncompressed stream, and such
files are never truncated.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, NamedTuple

from logcaster.segments.blocks import (
    DEFAULT_MAX_PAYLOAD,
    MAGIC,
    MAX_HEADER_BYTES,
    Header,
    Mode,
    block_crc,
    decode_payload,
    parse_header,
    payload_shape_ok,
)

BAD_HEADER = "bad header"
SHORT_PAYLOAD = "short payload"
CHECKSUM_MISMATCH = "checksum mismatch"
BAD_PAYLOAD = "bad payload"
BAD_GZIP = "bad gzip stream"

_RESYNC = b"\n" + MAGIC
_SEARCH_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class BlockInfo:
    first_id: int
    count: int
    offset: int  # of the header's '#'
    length: int  # header + payload
    mode: Mode = "raw"
    received: float = 0.0  # the batch's receive time, unix seconds

    @property
    def end(self) -> int:
        return self.offset + self.length

    @property
    def last_id(self) -> int:
        return self.first_id + self.count - 1


@dataclass(frozen=True, slots=True)
class TornTail:
    """Damage with no valid block after it: `bytes_after` bytes from `offset` to the end.

    For a damaged gzip stream (reason `BAD_GZIP`) `bytes_after` is 0: the rest
    cannot be decompressed, so its length is unknown.
    """

    offset: int
    bytes_after: int
    reason: str


@dataclass(frozen=True, slots=True)
class Corruption:
    """Damage at `offset` followed by valid blocks; `skipped` bytes were passed over."""

    offset: int
    reason: str
    skipped: int


Problem = TornTail | Corruption


@dataclass(slots=True)
class SegmentScan:
    path: Path
    blocks: list[BlockInfo] = field(default_factory=list)  # empty if keep_blocks=False
    block_count: int = 0
    event_count: int = 0
    first_id: int | None = None  # of the first good block
    last_id: int | None = None  # of the last good block
    end_of_good: int = 0  # end of the last good block (0 if none)
    size: int = 0  # bytes in the file (uncompressed for .gz)
    problems: list[Problem] = field(default_factory=list)  # in file order
    mode_blocks: dict[str, int] = field(default_factory=dict)  # good blocks per mode
    first_received: float | None = None  # receive time of the first good block
    last_received: float | None = None  # of the last good block

    @property
    def problem(self) -> Problem | None:
        """The first problem in the file, or None if the file is clean."""
        return self.problems[0] if self.problems else None

    @property
    def torn_tail(self) -> TornTail | None:
        last = self.problems[-1] if self.problems else None
        return last if isinstance(last, TornTail) else None

    @property
    def corruptions(self) -> list[Corruption]:
        return [p for p in self.problems if isinstance(p, Corruption)]


class _Good(NamedTuple):
    info: BlockInfo
    header: Header
    payload: bytes


def _open(path: Path) -> BinaryIO:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


class _Bad(NamedTuple):
    reason: str
    length: int | None  # the block's length if its header parsed


def _read_block(f: BinaryIO, max_payload: int) -> tuple[Header, bytes] | _Bad | None:
    """Read the block at the current position: (header, payload), _Bad, or None at EOF."""
    line = f.readline(MAX_HEADER_BYTES)
    if not line:
        return None
    header = parse_header(line, max_payload)
    if header is None:
        return _Bad(BAD_HEADER, None)
    length = header.length + header.payload_bytes
    payload = f.read(header.payload_bytes)
    if len(payload) < header.payload_bytes:
        return _Bad(SHORT_PAYLOAD, length)
    if block_crc(header.fields, payload) != header.crc:
        return _Bad(CHECKSUM_MISMATCH, length)
    if not payload_shape_ok(payload, header.count):
        return _Bad(BAD_PAYLOAD, length)
    return header, payload


def _candidates(f: BinaryIO, damaged_at: int, bad: _Bad) -> Iterator[int]:
    """Where a valid block may start after damage at `damaged_at`, in file order.

    First where the damaged block's own header says it ends (so a flipped final
    newline does not hide the next header), then after each b"\\n#LC2 ".
    """
    expected = damaged_at + bad.length if bad.length is not None else None
    for candidate in _find_resync(f, damaged_at):
        if expected is not None and expected <= candidate:
            if expected < candidate:
                yield expected
            expected = None
        yield candidate
    if expected is not None:
        yield expected


def _find_resync(f: BinaryIO, start: int) -> Iterator[int]:
    """Offsets (of the '#') of each b"\\n#LC2 " whose newline is at or after `start`.

    The caller may move the file position between items; the search resumes where
    it left off.
    """
    pos = start
    while True:
        f.seek(pos)
        chunk = f.read(_SEARCH_CHUNK)
        if len(chunk) < len(_RESYNC):
            return
        i = chunk.find(_RESYNC)
        if i >= 0:
            yield pos + i + 1
            pos = pos + i + 1
        elif len(chunk) < _SEARCH_CHUNK:
            return
        else:
            pos += len(chunk) - len(_RESYNC) + 1


def _walk(f: BinaryIO, scan: SegmentScan, max_payload: int, start: int = 0) -> Iterator[_Good]:
    """Yield the good blocks in order; record problems, end_of_good and size in `scan`."""
    try:
        yield from _walk_blocks(f, scan, max_payload, start)
    except (EOFError, zlib.error, gzip.BadGzipFile):
        # Only a gzip stream raises these: truncated or damaged compressed data. The
        # damage starts at or after the end of the last good block.
        scan.problems.append(TornTail(scan.end_of_good, 0, BAD_GZIP))
        scan.size = scan.end_of_good


def _walk_blocks(
    f: BinaryIO, scan: SegmentScan, max_payload: int, start: int = 0
) -> Iterator[_Good]:
    # The file position is always `pos` here: no seeks unless there is damage
    # (a backward seek in a gzip stream restarts decompression).
    pos = start
    if start:
        f.seek(start)
    while True:
        result = _read_block(f, max_payload)
        if result is None:
            break
        if isinstance(result, _Bad):
            damaged_at = pos
            found: tuple[int, Header, bytes] | None = None
            for candidate in _candidates(f, damaged_at, result):
                f.seek(candidate)
                r = _read_block(f, max_payload)
                if r is not None and not isinstance(r, _Bad):
                    found = (candidate, *r)
                    break
            if found is None:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                scan.problems.append(TornTail(damaged_at, size - damaged_at, result.reason))
                scan.size = size
                return
            pos, header, payload = found
            scan.problems.append(Corruption(damaged_at, result.reason, pos - damaged_at))
        else:
            header, payload = result
        info = BlockInfo(
            header.first_id,
            header.count,
            pos,
            header.length + header.payload_bytes,
            header.mode,
            header.received,
        )
        pos = info.end
        scan.end_of_good = pos
        yield _Good(info, header, payload)
    scan.size = pos


def scan_segment(
    path: str | os.PathLike[str],
    *,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    keep_blocks: bool = True,
) -> SegmentScan:
    """Verify every block of the file at `path`; never raises for bad content.

    With `keep_blocks=False` only the counts are kept (for files of many tiny blocks).
    """
    scan = SegmentScan(Path(path))
    with _open(scan.path) as f:
        for good in _walk(f, scan, max_payload):
            info = good.info
            if keep_blocks:
                scan.blocks.append(info)
            scan.block_count += 1
            scan.event_count += info.count
            scan.mode_blocks[info.mode] = scan.mode_blocks.get(info.mode, 0) + 1
            if scan.first_id is None:
                scan.first_id = info.first_id
                scan.first_received = info.received
            scan.last_id = info.last_id
            scan.last_received = info.received
    return scan


class RawBlock(NamedTuple):
    """A good block with its payload as stored (escaped lines), for the store's scans."""

    header: Header
    payload_offset: int  # of the payload's first byte in the file
    payload: bytes


def iter_raw_blocks(
    path: str | os.PathLike[str],
    *,
    start: int = 0,
    end: int | None = None,
    max_id: int | None = None,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    file: BinaryIO | None = None,
) -> Iterator[RawBlock]:
    """The good blocks of a plain segment from byte `start` (a block boundary).

    Stops before a block that would end past `end`, or that holds ids past
    `max_id` (either bounds the durable part of a file still being written:
    what follows may be a write in progress). `file`, if given, is `path`
    already open (the caller checked it is the file it meant, see the store's
    indexer); it is read from `start` and left open.
    """
    p = Path(path)
    if p.name.endswith(".gz"):
        raise ValueError(f"{p}: the store reads plain segments only")
    scan = SegmentScan(p)
    with contextlib.nullcontext(file) if file is not None else open(p, "rb") as f:
        for good in _walk(f, scan, max_payload, start):
            info = good.info
            if end is not None and info.end > end:
                return
            if max_id is not None and good.header.first_id + good.header.count - 1 > max_id:
                return
            yield RawBlock(good.header, info.offset + good.header.length, good.payload)


class StoredBatch(NamedTuple):
    """A good block's batch as written: ids, texts, receive time, source and mode."""

    first_id: int
    texts: list[bytes]
    received: float  # unix seconds, to the microsecond
    source: str
    mode: Mode


def read_batches(
    path: str | os.PathLike[str], *, max_payload: int = DEFAULT_MAX_PAYLOAD
) -> Iterator[StoredBatch]:
    """Every good block of the file, in file order, each decoded by its own mode.

    Damaged blocks are skipped. Raises BlockFormatError only for a block whose
    checksum holds but whose lines do not decode, which no LogCaster writer produces.
    """
    scan = SegmentScan(Path(path))
    with _open(scan.path) as f:
        for good in _walk(f, scan, max_payload):
            h = good.header
            texts = decode_payload(good.payload, h.count, h.mode)
            yield StoredBatch(h.first_id, texts, h.received, h.source, h.mode)


def read_blocks(
    path: str | os.PathLike[str], *, max_payload: int = DEFAULT_MAX_PAYLOAD
) -> Iterator[tuple[int, list[bytes]]]:
    """(first_id, texts) of every good block, in file order (see `read_batches`)."""
    for batch in read_batches(path, max_payload=max_payload):
        yield batch.first_id, batch.texts


def iter_good_block_bytes(
    path: str | os.PathLike[str], *, max_payload: int = DEFAULT_MAX_PAYLOAD
) -> Iterator[tuple[BlockInfo, bytes]]:
    """Every good block of the file (plain or .gz) with its bytes exactly as stored.

    For repairs: copying blocks verbatim keeps their receive time, source, mode
    and checksum, where decoding and encoding them again would not.
    """
    scan = SegmentScan(Path(path))
    with _open(scan.path) as f:
        for good in _walk(f, scan, max_payload):
            h = good.header
            line = b"%s%s %08x\n" % (MAGIC, h.fields, h.crc)
            yield good.info, line + good.payload


def truncate_torn_tail(path: str | os.PathLike[str], scan: SegmentScan) -> int:
    """Cut a torn tail found by `scan` off the plain file at `path` and fsync.

    Returns the bytes removed (0 if the scan found no torn tail). Refuses gzip
    files and files whose size changed since the scan.
    """
    tail = scan.torn_tail
    if tail is None:
        return 0
    p = Path(path)
    if p.name.endswith(".gz"):
        raise ValueError(f"{p}: gzip segments are never truncated")
    fd = os.open(p, os.O_RDWR)
    try:
        size = os.fstat(fd).st_size
        if size != scan.size:
            raise ValueError(f"{p}: size changed since the scan ({scan.size} -> {size})")
        os.ftruncate(fd, scan.end_of_good)
        os.fsync(fd)
    finally:
        os.close(fd)
    return size - scan.end_of_good
