"""A query's answer as every front end shows it (SPEC §6): one JSON shape, one text shape.

The line protocol's `JSON QUERY`, `GET /api/v1/query` and `logcaster query
--json` give the same document; the line protocol's text answer and
`logcaster query` (over either protocol) print the same `FOUND:` line and rows
(and the same `STATS:` line):

    {"found": n, "returned": r, "capped": bool, "max_count": m,
     "unindexed": [first, last],           (only when the store is behind)
     "events": [Event.to_dict(), ...]}

Event texts are exact in JSON (they decode to the stored text) but spelled
terminal-safe: DEL, C1, line separators and bidi controls as `\\uXXXX`
(`json_safe`, security/neutralize.py).

`events` comes last so that a large answer can be written as it is serialized
(`json_chunks`): the head first, then the events a slice at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from logcaster.event import Event
from logcaster.frontends.rows import format_row
from logcaster.query.planner import Answer
from logcaster.security.neutralize import json_safe

# Events serialized per chunk of a streamed answer: a few hundred KiB at most for
# typical events, so a 10,000-row answer is never one bytes object.
SLICE_EVENTS = 256


def answer_head(answer: Answer) -> dict[str, Any]:
    """Every key of the JSON answer but `events`."""
    head: dict[str, Any] = {
        "found": answer.total,
        "returned": len(answer.rows),
        "capped": answer.capped,
        "max_count": answer.max_count,
    }
    if answer.unindexed is not None:
        head["unindexed"] = list(answer.unindexed)
    return head


def answer_json(answer: Answer) -> bytes:
    """The whole JSON answer in one document."""
    doc = answer_head(answer)
    doc["events"] = [ev.to_dict() for ev in answer.rows]
    return json_safe(orjson.dumps(doc, default=str))


def json_chunks(answer: Answer, per_chunk: int = SLICE_EVENTS) -> Iterator[bytes]:
    """The same bytes as `answer_json`'s document, in pieces: the head, then
    `per_chunk` events at a time, then the closing brackets."""
    head = orjson.dumps(answer_head(answer))
    yield head[:-1] + b',"events":['
    rows = answer.rows
    for start in range(0, len(rows), per_chunk):
        part = orjson.dumps([ev.to_dict() for ev in rows[start : start + per_chunk]], default=str)
        part = json_safe(part)
        yield (b"," if start else b"") + part[1:-1]
    yield b"]}"


def ndjson_chunks(answer: Answer, per_chunk: int = SLICE_EVENTS) -> Iterator[bytes]:
    """The rows as NDJSON (one `answer_json` event a line), `per_chunk` at a time."""
    rows = answer.rows
    for start in range(0, len(rows), per_chunk):
        lines = [orjson.dumps(ev.to_dict(), default=str) for ev in rows[start : start + per_chunk]]
        yield json_safe(b"\n".join(lines) + b"\n")


def answer_text(answer: Answer) -> str:
    """`FOUND: n matches` (with its notes), then one row per event."""
    found = f"{answer.total}+" if answer.capped else str(answer.total)
    head = f"FOUND: {found} matches"
    notes = []
    if answer.capped:
        notes.append(f"counting stops at max_count={answer.max_count}")
    if answer.unindexed is not None:
        first, last = answer.unindexed
        notes.append(f"partial: events {first}..{last} are not indexed yet")
    if notes:
        head += " (" + "; ".join(notes) + ")"
    lines = [head]
    lines.extend(format_row(ev) for ev in answer.rows)
    return "\n".join(lines) + "\n"


def stats_text(stats: dict[str, int | float]) -> str:
    """`STATS: Total=…, Dropped=…, …` on one line."""
    return "STATS: " + ", ".join(f"{k}={_num(v)}" for k, v in stats.items()) + "\n"


def _num(value: int | float) -> str:
    if not isinstance(value, float):
        return str(value)
    # Rates below 1 (TailKeepRate 0.05) keep their digits; seconds keep one decimal.
    return f"{value:.4g}" if 0 < abs(value) < 1 else f"{value:.1f}"


def answer_from_json(doc: dict[str, Any]) -> Answer:
    """The `Answer` a JSON answer was made from (a client printing text rows).

    Raises KeyError, TypeError or ValueError for a document of another shape."""
    unindexed = doc.get("unindexed")
    return Answer(
        total=int(doc["found"]),
        rows=[Event.from_dict(ev) for ev in doc["events"]],
        capped=bool(doc["capped"]),
        max_count=int(doc["max_count"]),
        unindexed=(int(unindexed[0]), int(unindexed[1])) if unindexed else None,
    )
