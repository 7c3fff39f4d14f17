"""Reading the first block format, `#LC1` (format v1; docs/data-format.md).

    #LC1 <first_id> <count> <payload_bytes> <crc32c-hex8>\\n
    <count escaped lines>

The payload's escaping is the one `#LC2`'s raw mode still uses, and the CRC32C
covers the header's fields as written, then the payload, as in `#LC2`: only
the header lacks the receive time, the source and the mode. So the block
module's `block_crc` and `decode_payload` read it; this module only knows the
header and how to step over damage.

Reading streams one block at a time (a block's payload is at most 64 MiB, the
limit the writer had), so converting a large segment holds one block in
memory. Damaged bytes (a torn tail, a flipped bit) are skipped up to the next
`\\n#LC1 ` and reported, as the LC2 reader does.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from logcaster.segments.blocks import (
    DEFAULT_MAX_PAYLOAD,
    BlockFormatError,
    block_crc,
    decode_payload,
    payload_shape_ok,
)

MAGIC = b"#LC1 "
MAX_HEADER_BYTES = 80  # the LC1 writer's bound: the longest header is 67 bytes
_HEADER_RE = re.compile(
    rb"#LC1 ((0|[1-9][0-9]{0,19}) ([1-9][0-9]{0,9}) ([1-9][0-9]{0,19})) ([0-9a-f]{8})\n"
)
_RESYNC = b"\n" + MAGIC
_WINDOW = 1024 * 1024  # bytes read at a time while looking for the next header


@dataclass(slots=True)
class Damage:
    """Byte ranges skipped while reading one file: (offset, length)."""

    regions: list[tuple[int, int]] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(length for _, length in self.regions)


def iter_blocks(f: io.BufferedIOBase, damage: Damage) -> Iterator[tuple[int, list[bytes]]]:
    """(first_id, texts) of every good LC1 block of an open file, in file order."""
    pos = 0
    while True:
        if f.tell() != pos:
            f.seek(pos)
        head = f.readline(MAX_HEADER_BYTES)
        if not head:
            return
        block = _block_at(f, head)
        if block is not None:
            first_id, texts, length = block
            yield first_id, texts
            pos += length
            continue
        resync = _find_header(f, pos + 1)
        end = resync if resync is not None else _size(f)
        damage.regions.append((pos, end - pos))
        if resync is None:
            return
        pos = resync


def _block_at(f: io.BufferedIOBase, head: bytes) -> tuple[int, list[bytes], int] | None:
    """The block whose header line is `head` (the file is just past it), or None."""
    m = _HEADER_RE.fullmatch(head)
    if m is None:
        return None
    count, size = int(m[3]), int(m[4])
    if not count <= size <= DEFAULT_MAX_PAYLOAD:
        return None
    payload = f.read(size)
    if len(payload) != size or block_crc(m[1], payload) != int(m[5], 16):
        return None
    if not payload_shape_ok(payload, count):
        return None
    try:
        texts = decode_payload(payload, count, "raw")
    except BlockFormatError:
        return None
    return int(m[2]), texts, len(head) + size


def _find_header(f: io.BufferedIOBase, start: int) -> int | None:
    """The offset of the next `#LC1 ` that starts a line, at or after `start`."""
    f.seek(start - 1)
    offset = start - 1
    carry = b""
    while chunk := f.read(_WINDOW):
        window = carry + chunk
        hit = window.find(_RESYNC)
        if hit >= 0:
            return offset - len(carry) + hit + 1
        carry = window[-(len(_RESYNC) - 1) :]
        offset += len(chunk)
    return None


def _size(f: io.BufferedIOBase) -> int:
    f.seek(0, 2)
    return f.tell()
