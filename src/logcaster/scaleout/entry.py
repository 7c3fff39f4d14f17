"""A stream entry: one batch as the ingest node XADDs it and a writer reads it.

One entry per batch, not per event: an XADD per event would cost Redis a
command per event. Fields (bytes, all ASCII but the texts):

    v        b"1"                   the format; a writer refuses others (dead letter)
    node     the node id            decimal, 1 .. 2**63-1 (scaleout/node.py)
    first    the first event id     the batch's ids are first .. first+n-1
    n        the event count
    recv     receive time, integer microseconds since the epoch
    src      the source label       (`tcp:127.0.0.1:50412`)
    texts    the texts              the file sink's raw payload: one escaped line per
                                    text (segments/blocks.py), so a multi-line event
                                    stays one line and bytes.replace does the work
    session, seq                    only when the client named its stream: the
                                    session (32 hex) and the line the first text
                                    starts on (pipeline/batch.py, StreamMark)

`decode` raises `EntryError` for anything else: a writer retries such an entry
up to `max_deliveries` times, then moves it to the dead-letter stream.
"""

from __future__ import annotations

from logcaster.pipeline.batch import Batch, StreamMark
from logcaster.segments.blocks import BlockFormatError, decode_payload, encode_payload, received_us

# The last microsecond of 9999-12-31: a receive time must have a date (its partition).
MAX_RECEIVED_US = 253_402_300_799_999_999

VERSION = b"1"
Fields = dict[bytes, bytes]


class EntryError(ValueError):
    """A stream entry that is not a batch this version can read."""


def encode(batch: Batch, node: int) -> Fields:
    fields: Fields = {
        b"v": VERSION,
        b"node": b"%d" % node,
        b"first": b"%d" % batch.first_id,
        b"n": b"%d" % len(batch),
        b"recv": b"%d" % received_us(batch.received_at),
        b"src": batch.source.encode("utf-8", "backslashreplace"),
        b"texts": batch.payload or encode_payload(batch.texts),
    }
    mark = batch.stream
    if mark is not None:
        fields[b"session"] = mark.session.encode()
        fields[b"seq"] = b"%d" % mark.seq
    return fields


def _number(fields: Fields, key: bytes, low: int = 0, high: int = (1 << 63) - 1) -> int:
    raw = fields.get(key)
    if raw is None or not raw.isdigit() or len(raw) > 19:
        raise EntryError(f"field {key.decode()!r} is missing or not a number: {raw!r:.40}")
    value = int(raw)
    if value < low or value > high:
        raise EntryError(f"field {key.decode()!r} is out of range: {value}")
    return value


def decode(fields: Fields) -> tuple[int, Batch]:
    """The node id and the batch of an entry; EntryError says what is wrong."""
    version = fields.get(b"v")
    if version != VERSION:
        raise EntryError(f"entry format {version!r:.20} (this writer reads {VERSION!r})")
    node = _number(fields, b"node", 1)
    first = _number(fields, b"first")
    count = _number(fields, b"n", 1)
    received = _number(fields, b"recv", high=MAX_RECEIVED_US) / 1e6
    source = fields.get(b"src", b"").decode("utf-8", "replace")
    try:
        texts = decode_payload(fields.get(b"texts", b""), count)
    except BlockFormatError as exc:
        raise EntryError(f"texts: {exc}") from None
    mark = None
    session = fields.get(b"session")
    if session is not None:
        text = session.decode("ascii", "replace")
        if len(text) != 32 or any(c not in "0123456789abcdef" for c in text):
            raise EntryError(f"session {session!r:.40} is not 32 hex digits")
        mark = StreamMark(text, _number(fields, b"seq"))
    return node, Batch(first, received, source, texts, mark)
