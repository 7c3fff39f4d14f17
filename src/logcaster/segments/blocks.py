"""The on-disk block format of the file sink (docs/persistence-design.md).

A block holds one batch:

    #LC2 <first_id> <count> <payload_bytes> <received_us> <mode> <source> <crc32c-hex8>\\n
    <line for event first_id>\\n
    ...
    <line for event first_id+count-1>\\n

- `received_us`: the batch's receive time (`Batch.received_at`) in integer
  microseconds since the Unix epoch, so replay restores it.
- `mode`: `r` (raw) or `j` (JSON lines): how the payload's lines encode the
  texts. A directory may mix modes across restarts; every reader decodes each
  block by its own flag.
- `source`: the batch's source label (`tcp:127.0.0.1:50412`, `syslog-udp`)
  percent-encoded to printable ASCII without spaces (`%`, space, control and
  non-ASCII bytes as `%XX`), cut to at most 128 bytes; `-` for an empty label.
- Numbers are decimal without leading zeros; the CRC is 8 lower-case hex digits.

The CRC32C (Castagnoli, `google-crc32c`) covers the header's fields as written
(from `<first_id>` to `<source>`, with their single spaces), then the payload,
i.e. the lines with their newlines: a flipped digit in an id, the time or the
mode is caught like one in a line. `payload_bytes` is the payload's length.

Raw mode escaping, so that every line is exactly one event and never looks
like a header:

    \\        ->  \\\\
    newline   ->  \\n   (backslash, letter n)
    CR        ->  \\r   (backslash, letter r)
    a text starting with `#` gets a leading backslash: `#x` -> `\\#x`

After escaping, every backslash starts a two-byte sequence (`\\\\`, `\\n`,
`\\r`, or `\\#` at the start of a line only), so decoding is unambiguous and
`decode_payload(encode_payload(texts)) == texts` for all byte strings. Raw
encoding is `segments/_escape.c` where it is built (one pass per text with the
GIL released, so the writer thread encodes beside the event loop), else works
on the whole joined batch with `bytes.join`/`bytes.replace` (C loops, under the
GIL); no Python code runs per event either way.

JSON mode: each line is the parsed event (`Event.to_dict()`, the dict the query
protocol's JSON output sends) as one orjson object. Its `body` is the event's
text, so decoding restores the text exactly; a text that is not valid UTF-8
(ingest never produces one) also gets `raw_b64`, its bytes in base64. orjson
escapes every control character, so a line holds no raw newline, and it starts
with `{`. This costs a full parse per event (see the design doc's figures).

In both modes no line contains a raw newline and no line starts with `#`, so in
a valid file the bytes `\\n#LC2 ` occur only in front of a header, which is
what a reader resyncs on.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

import google_crc32c
import numpy as np
import orjson

from logcaster.parsing.parse import parse_event

if TYPE_CHECKING:
    from logcaster.event import Event

try:
    from logcaster.segments._escape import (  # type: ignore[import-not-found]
        encode_payload as _c_encode_payload,
    )
except ImportError:  # not built (scripts/build-native): escaped in Python
    _c_encode_payload = None

# segments/_escape.c's encode_payload (bytes texts only), None where it is not
# built; tests switch it.
c_encode_payload: Callable[[Sequence[bytes]], bytes] | None = _c_encode_payload

Mode = Literal["raw", "json"]
MODES: tuple[Mode, ...] = ("raw", "json")
_MODE_FLAG: dict[str, bytes] = {"raw": b"r", "json": b"j"}
_FLAG_MODE: dict[bytes, Mode] = {b"r": "raw", b"j": "json"}

MAGIC = b"#LC2 "
MAX_RECEIVED_US = 10**18 - 1  # 18 digits: year 33658
MAX_SOURCE_BYTES = 128
# The longest header: magic, first_id (<= 20 digits), count (<= 10), payload_bytes
# (<= 20), received_us (<= 18), mode (1), source (<= 128), 6 spaces, crc (8), '\n'
# = 217 bytes. The reader reads at most this many bytes for a header line.
MAX_HEADER_BYTES = len(MAGIC) + 20 + 10 + 20 + 18 + 1 + MAX_SOURCE_BYTES + 6 + 8 + 1
DEFAULT_MAX_PAYLOAD = 64 * 1024 * 1024

_HEADER_RE = re.compile(
    rb"#LC2 ((0|[1-9][0-9]{0,19}) ([1-9][0-9]{0,9}) ([1-9][0-9]{0,19}) (0|[1-9][0-9]{0,17})"
    rb" ([rj]) ([!-~]{1,%d})) ([0-9a-f]{8})\n" % MAX_SOURCE_BYTES
)
# Bytes a source label keeps as they are: printable ASCII but space and '%'.
_SOURCE_SAFE = frozenset(range(0x21, 0x7F)) - {ord("%")}
_PERCENT = re.compile(rb"%([0-9A-F]{2})")

# bytes.find is slow for b"\n#" in text with a newline every ~100 bytes; re is 3x faster.
_LINE_STARTS_WITH_HASH = re.compile(rb"\n#")
# Payloads from this size on have their bytes counted by numpy (its call costs ~2 us).
_NUMPY_COUNT_FROM = 16384


class BlockFormatError(ValueError):
    """A header or payload that does not follow the block format."""


@dataclass(frozen=True, slots=True)
class Header:
    first_id: int
    count: int
    payload_bytes: int
    received_us: int
    mode: Mode
    source: str
    crc: int
    length: int  # of the header line, newline included
    fields: bytes  # the header's fields as written: what the CRC covers before the payload

    @property
    def received(self) -> float:
        """The receive time in unix seconds."""
        return self.received_us / 1e6


def crc32c(data: bytes) -> int:
    return int(google_crc32c.value(data))


def block_crc(fields: bytes, payload: bytes) -> int:
    """The checksum of a block: its header fields as written, then its payload."""
    return int(google_crc32c.extend(google_crc32c.value(fields), payload))


@lru_cache(maxsize=4096)
def encode_source(source: str) -> bytes:
    """`source` as a header field: percent-encoded, at most MAX_SOURCE_BYTES, never empty."""
    raw = source.encode("utf-8", "backslashreplace")
    out = bytearray()
    for byte in raw:
        piece = bytes((byte,)) if byte in _SOURCE_SAFE else b"%%%02X" % byte
        if len(out) + len(piece) > MAX_SOURCE_BYTES:
            break
        out += piece
    if not out:
        return b"-"
    if out == b"-":
        return b"%2D"
    return bytes(out)


@lru_cache(maxsize=4096)
def decode_source(field: bytes) -> str:
    """The source label of a header field (`encode_source` undone)."""
    if field == b"-":
        return ""
    raw = _PERCENT.sub(lambda m: bytes((int(m[1], 16),)), field)
    # A label cut at MAX_SOURCE_BYTES may end inside a UTF-8 sequence.
    return raw.decode("utf-8", "replace")


def received_us(received: float) -> int:
    """A receive time (unix seconds) as header microseconds, clamped to the field's range."""
    if not math.isfinite(received):
        return 0
    us = round(received * 1e6)
    return min(max(us, 0), MAX_RECEIVED_US)


def count_byte(data: bytes, byte: bytes) -> int:
    """How many times `byte` occurs in `data`: numpy compares at memory speed where
    bytes.count loops byte by byte (48 against 15 ns per 130-byte line)."""
    if len(data) < _NUMPY_COUNT_FROM:
        return data.count(byte)
    return int(np.count_nonzero(np.frombuffer(data, np.uint8) == byte[0]))


def encode_payload(texts: list[bytes]) -> bytes:
    """The escaped lines of `texts`, each ending in a newline."""
    if c_encode_payload is not None:
        try:
            return c_encode_payload(texts)
        except TypeError:  # a bytes-like text other than bytes: the joins take it
            pass
    return encode_payload_py(texts)


def encode_payload_py(texts: list[bytes]) -> bytes:
    """encode_payload in Python (bytes.join and bytes.replace over the batch)."""
    if not texts:
        return b""
    ended = [*texts, b""]  # joins to a trailing newline without another copy of the payload
    by_cr = b"\r".join(ended)
    if count_byte(by_cr, b"\r") == len(texts):
        # No CR in any text: the CR separators mark the events. Escape the inner
        # newlines, if any (a memchr tells), then turn the separators into newlines.
        # All C loops over the whole batch.
        if b"\n" in by_cr:
            joined = by_cr.replace(b"\\", b"\\\\").replace(b"\n", b"\\n").replace(b"\r", b"\n")
        else:
            joined = by_cr.replace(b"\r", b"\n")
            if b"\\" in joined:
                joined = joined.replace(b"\\", b"\\\\")
    elif count_byte(joined := b"\n".join(ended), b"\n") == len(texts):  # no inner newline
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


def encode_json_payload(
    first_id: int,
    texts: list[bytes],
    received: float,
    source: str,
    events: list[Event] | None = None,
) -> bytes:
    """The JSON lines of `texts`: each event parsed, as `Event.to_dict()`, one per line.

    `events` are the batch's already parsed events, if it has them; otherwise each
    text is parsed here (with `received` and `source`, as `Batch.events` would).
    """
    dumps = orjson.dumps
    lines: list[bytes] = []
    append = lines.append
    for i, text in enumerate(texts):
        ev = events[i] if events is not None else parse_event(first_id + i, received, source, text)
        d = ev.to_dict()
        # `body` is the text decoded with errors="replace": exact unless the text
        # is not valid UTF-8, which only a U+FFFD in it can mean.
        if "\ufffd" in ev.body and ev.body.encode() != text:
            d["raw_b64"] = base64.b64encode(text).decode("ascii")
        try:
            append(dumps(d, default=str))
        except orjson.JSONEncodeError:
            # Fields orjson cannot write (nested deeper than it allows, integers
            # past 64 bits): keep the event and its text without them.
            d["fields"] = {}
            append(dumps(d, default=str))
    lines.append(b"")
    return b"\n".join(lines)


def encode_header(
    first_id: int,
    count: int,
    payload: bytes,
    *,
    received: float = 0.0,
    source: str = "",
    mode: Mode = "raw",
) -> bytes:
    fields = b"%d %d %d %d %s %s" % (
        first_id,
        count,
        len(payload),
        received_us(received),
        _MODE_FLAG[mode],
        encode_source(source),
    )
    return b"%s%s %08x\n" % (MAGIC, fields, block_crc(fields, payload))


def encode_block_parts(
    first_id: int,
    texts: list[bytes],
    *,
    received: float = 0.0,
    source: str = "",
    mode: Mode = "raw",
    events: list[Event] | None = None,
) -> tuple[bytes, bytes]:
    """(header, payload) of `encode_block`, for writers that join many blocks at once."""
    if not texts:
        raise ValueError("a block holds at least one event")
    if first_id < 0:
        raise ValueError("first_id must be >= 0")
    if mode == "raw":
        payload = encode_payload(texts)
    elif mode == "json":
        payload = encode_json_payload(first_id, texts, received, source, events)
    else:
        raise ValueError(f"mode must be raw or json, not {mode!r}")
    header = encode_header(
        first_id, len(texts), payload, received=received, source=source, mode=mode
    )
    return header, payload


def encode_block(
    first_id: int,
    texts: list[bytes],
    *,
    received: float = 0.0,
    source: str = "",
    mode: Mode = "raw",
) -> bytes:
    """One block holding events `first_id .. first_id + len(texts) - 1`."""
    header, payload = encode_block_parts(
        first_id, texts, received=received, source=source, mode=mode
    )
    return header + payload


def parse_header(line: bytes, max_payload: int = DEFAULT_MAX_PAYLOAD) -> Header | None:
    """The header in `line` (newline included), or None if it is not a valid one.

    Beyond the syntax: `payload_bytes` must be at least `count` (every line has a
    newline) and at most `max_payload`.
    """
    m = _HEADER_RE.fullmatch(line)
    if m is None:
        return None
    count = int(m[3])
    payload_bytes = int(m[4])
    if payload_bytes < count or payload_bytes > max_payload:
        return None
    return Header(
        first_id=int(m[2]),
        count=count,
        payload_bytes=payload_bytes,
        received_us=int(m[5]),
        mode=_FLAG_MODE[m[6]],
        source=decode_source(m[7]),
        crc=int(m[8], 16),
        length=len(line),
        fields=m[1],
    )


def payload_shape_ok(payload: bytes, count: int) -> bool:
    """Whether `payload` is `count` newline-terminated lines, none starting with '#'."""
    return (
        payload.endswith(b"\n")
        and count_byte(payload, b"\n") == count
        and not payload.startswith(b"#")
        and not (b"#" in payload and _LINE_STARTS_WITH_HASH.search(payload, 0, len(payload) - 1))
    )


def unescape_line(line: bytes) -> bytes:
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


def decode_payload(payload: bytes, count: int, mode: Mode = "raw") -> list[bytes]:
    """The event texts of a payload holding `count` lines; raises BlockFormatError."""
    if count == 0 and not payload:
        return []
    if not payload_shape_ok(payload, count):
        raise BlockFormatError(f"payload is not {count} escaped lines")
    lines = payload.split(b"\n")
    lines.pop()  # the empty piece after the final newline
    if mode == "json":
        return [_json_text(line) for line in lines]
    if b"\\" not in payload:
        return lines
    return [unescape_line(line) if b"\\" in line else line for line in lines]


def _json_text(line: bytes) -> bytes:
    """The event text stored in one JSON line (`raw_b64` if present, else `body`)."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise BlockFormatError(f"bad JSON line {line[:80]!r}: {exc}") from None
    if not isinstance(obj, dict):
        raise BlockFormatError(f"JSON line is not an object: {line[:80]!r}")
    raw = obj.get("raw_b64")
    if isinstance(raw, str):
        try:
            return base64.b64decode(raw, validate=True)
        except ValueError:
            raise BlockFormatError(f"bad raw_b64 in JSON line {line[:80]!r}") from None
    body = obj.get("body")
    if not isinstance(body, str):
        raise BlockFormatError(f"JSON line without a body: {line[:80]!r}")
    try:
        return body.encode()
    except UnicodeEncodeError:
        raise BlockFormatError(f"body is not encodable: {line[:80]!r}") from None
