"""The on-disk block format of the file sink (docs/persistence-design.md).

A block holds one batch:

    #LC1 <first_id> <count> <payload_bytes> <crc32c-hex8>\\n
    <line for event first_id>\\n
    ...
    <line for event first_id+count-1>\\n

The CRC32C (Castagnoli, `google-crc32c`) covers the header's fields as written
(`<first_id> <count> <payload_bytes>`), then the payload, i.e. the lines with
their newlines: a flipped digit in an id is caught like one in a line.
`payload_bytes` is the payload's length.

Escaping (raw mode), so that every line is exactly one event and never looks
like a header:

    \\        ->  \\\\
    newline   ->  \\n   (backslash, letter n)
    CR        ->  \\r   (backslash, letter r)
    a text starting with `#` gets a leading backslash: `#x` -> `\\#x`

After escaping, every backslash starts a two-byte sequence (`\\\\`, `\\n`,
`\\r`, or `\\#` at the start of a line only), so decoding is unambiguous and
`decode_payload(encode_payload(texts)) == texts` for all byte strings. No line
contains a raw newline and no line starts with `#`, so in a valid file the bytes
`\\n#LC1 ` occur only in front of a header, which is what a reader resyncs on.

Encoding works on the whole joined batch with `bytes.join`/`bytes.replace`
(C loops); no Python code runs per event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import google_crc32c

MAGIC = b"#LC1 "
# '#LC1 ' + first_id (<= 20 digits) + count (<= 10) + payload_bytes (<= 20) + crc (8) + 3 spaces
# + '\n' = 67 bytes; the reader reads at most this many bytes for a header line.
MAX_HEADER_BYTES = 80
DEFAULT_MAX_PAYLOAD = 64 * 1024 * 1024

_HEADER_RE = re.compile(
    rb"#LC1 (0|[1-9][0-9]{0,19}) ([1-9][0-9]{0,9}) ([1-9][0-9]{0,19}) ([0-9a-f]{8})\n"
)


# bytes.find is slow for b"\n#" in text with a newline every ~100 bytes; re is 3x faster.
_LINE_STARTS_WITH_HASH = re.compile(rb"\n#")


class BlockFormatError(ValueError):
    """A header or payload that does not follow the block format."""


@dataclass(frozen=True, slots=True)
class Header:
    first_id: int
    count: int
    payload_bytes: int
    crc: int
    length: int  # of the header line, newline included


def crc32c(data: bytes) -> int:
    return int(google_crc32c.value(data))


def block_crc(first_id: int, count: int, payload: bytes) -> int:
    """The checksum of a block: its header fields, then its payload."""
    fields = b"%d %d %d" % (first_id, count, len(payload))
    return int(google_crc32c.extend(google_crc32c.value(fields), payload))


def encode_payload(texts: list[bytes]) -> bytes:
    """The escaped lines of `texts`, each ending in a newline."""
    if not texts:
        return b""
    n = len(texts)
    ended = [*texts, b""]  # joins to a trailing newline without another copy of the payload
    joined = b"\n".join(ended)
    multiline = joined.count(b"\n") != n
    if b"\r" not in joined:
        if multiline:
            # No CR in any text: join on CR instead, escape the inner newlines, then
            # turn the CR separators into newlines. All C loops over the whole batch.
            joined = (
                b"\r".join(ended)
                .replace(b"\\", b"\\\\")
                .replace(b"\n", b"\\n")
                .replace(b"\r", b"\n")
            )
        elif b"\\" in joined:
            joined = joined.replace(b"\\", b"\\\\")
    elif not multiline:
        joined = joined.replace(b"\\", b"\\\\").replace(b"\r", b"\\r")
    else:
        # Both CR and inner newlines: escape text by text (rare).
        joined = b"\n".join(
            [
                *(
                    t.replace(b"\\", b"\\\\").replace(b"\n", b"\\n").replace(b"\r", b"\\r")
                    for t in texts
                ),
                b"",
            ]
        )
    # Escaping never adds or removes a leading '#', so mark the lines that start with one.
    if joined.startswith(b"#"):
        joined = b"\\" + joined
    if b"#" in joined and _LINE_STARTS_WITH_HASH.search(joined):
        joined = joined.replace(b"\n#", b"\n\\#")
    return joined


def encode_header(first_id: int, count: int, payload: bytes) -> bytes:
    crc = block_crc(first_id, count, payload)
    return b"#LC1 %d %d %d %08x\n" % (first_id, count, len(payload), crc)


def encode_block_parts(first_id: int, texts: list[bytes]) -> tuple[bytes, bytes]:
    """(header, payload) of `encode_block`, for writers that join many blocks at once."""
    if not texts:
        raise ValueError("a block holds at least one event")
    if first_id < 0:
        raise ValueError("first_id must be >= 0")
    payload = encode_payload(texts)
    return encode_header(first_id, len(texts), payload), payload


def encode_block(first_id: int, texts: list[bytes]) -> bytes:
    """One block holding events `first_id .. first_id + len(texts) - 1`."""
    header, payload = encode_block_parts(first_id, texts)
    return header + payload


def parse_header(line: bytes, max_payload: int = DEFAULT_MAX_PAYLOAD) -> Header | None:
    """The header in `line` (newline included), or None if it is not a valid one.

    Beyond the syntax: `payload_bytes` must be at least `count` (every line has a
    newline) and at most `max_payload`.
    """
    m = _HEADER_RE.fullmatch(line)
    if m is None:
        return None
    count = int(m[2])
    payload_bytes = int(m[3])
    if payload_bytes < count or payload_bytes > max_payload:
        return None
    return Header(int(m[1]), count, payload_bytes, int(m[4], 16), len(line))


def payload_shape_ok(payload: bytes, count: int) -> bool:
    """Whether `payload` is `count` newline-terminated lines, none starting with '#'."""
    return (
        payload.endswith(b"\n")
        and payload.count(b"\n") == count
        and not payload.startswith(b"#")
        and not (b"#" in payload and _LINE_STARTS_WITH_HASH.search(payload, 0, len(payload) - 1))
    )


def _unescape_line(line: bytes) -> bytes:
    head = b""
    if line.startswith(b"\\#"):
        head = b"#"
        line = line[2:]
    # Every backslash starts a two-byte sequence, so the leftmost non-overlapping
    # b"\\\\" matches are exactly the escaped backslashes; between them every
    # backslash must be followed by 'n' or 'r'.
    parts = line.split(b"\\\\")
    for i, part in enumerate(parts):
        if b"\\" in part:
            part = part.replace(b"\\n", b"\n").replace(b"\\r", b"\r")
            if b"\\" in part:
                raise BlockFormatError(f"bad escape sequence in line {line[:80]!r}")
            parts[i] = part
    return head + b"\\".join(parts)


def decode_payload(payload: bytes, count: int) -> list[bytes]:
    """The event texts of a payload holding `count` lines; raises BlockFormatError."""
    if count == 0 and not payload:
        return []
    if not payload_shape_ok(payload, count):
        raise BlockFormatError(f"payload is not {count} escaped lines")
    lines = payload.split(b"\n")
    lines.pop()  # the empty piece after the final newline
    if b"\\" not in payload:
        return lines
    return [_unescape_line(line) if b"\\" in line else line for line in lines]
