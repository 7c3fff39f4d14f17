"""Stream entries as `events` rows: what a writer COPYs into PostgreSQL.

The writer parses here, off the ingest node's hot path, with the same
`parse_event` the embedded store uses, so a row holds the fields a query on
the node would see. The key of a row is (node, event id, day); `day` is the
UTC day the node received the batch (not the event's own time: it must be the
same on every delivery of the entry, and a late or skewed clock must not move
it). A client's named stream adds (session, line): the event's first line.

PostgreSQL's text and jsonb cannot hold NUL (U+0000): it becomes U+FFFD in
the stored text, the only change a row makes to what the node received.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import orjson

from logcaster.pipeline.batch import Batch

COLUMNS = (
    "node",
    "event_id",
    "day",
    "session",
    "seq",
    "ts",
    "received_at",
    "source",
    "level",
    "service",
    "host",
    "request_id",
    "message",
    "body",
    "fields",
    "version",
    "pod",
)
# Types for a binary COPY into the staging table (`fields` is text there, cast to jsonb).
COPY_TYPES = (
    "int8",
    "int8",
    "date",
    "uuid",
    "int8",
    "float8",
    "float8",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
)
# Where an event's request id is, first found first (the parsers' field names).
REQUEST_FIELDS = ("request_id", "req", "requestId", "trace_id", "traceId")

Row = tuple[Any, ...]


EPOCH = dt.date(1970, 1, 1)


@lru_cache(maxsize=64)
def day_of(days: int) -> dt.date:
    """The date `days` days after 1970-01-01 (a receive time's UTC day)."""
    return EPOCH + dt.timedelta(days=days)


def _clean(text: str) -> str:
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _maybe(text: str | None) -> str | None:
    return None if text is None else _clean(text)


def _json(fields: dict[str, Any]) -> str | None:
    if not fields:
        return None
    data = orjson.dumps(fields, option=orjson.OPT_NON_STR_KEYS, default=str)
    if b"\\u0000" in data:
        data = data.replace(b"\\u0000", b"\\ufffd")
    return data.decode()


def _request_id(fields: dict[str, Any]) -> str | None:
    for name in REQUEST_FIELDS:
        value = fields.get(name)
        if value is not None:
            return _clean(str(value))[:200]
    return None


def batch_rows(node: int, batch: Batch) -> Iterator[Row]:
    """One row per event of `batch`, in the order of COLUMNS."""
    day = day_of(int(batch.received_at // 86400))
    mark = batch.stream
    session = uuid.UUID(mark.session) if mark is not None else None
    line = mark.seq if mark is not None else 0
    for ev, text in zip(batch.events(), batch.texts, strict=True):
        seq = None
        if session is not None:
            seq = line
            line += text.count(b"\n") + 1
        fields = ev.fields
        yield (
            node,
            ev.id,
            day,
            session,
            seq,
            ev.ts,
            ev.received_at,
            _clean(ev.source),
            ev.level,
            _maybe(ev.service),
            _maybe(ev.host),
            _request_id(fields),
            _clean(ev.message),
            _clean(ev.body),
            _json(fields),
            _maybe(ev.version),
            _maybe(ev.pod),
        )
