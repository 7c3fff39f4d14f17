"""Elasticsearch `_bulk` bodies into event texts, item by item (docs/shippers.md).

A bulk body is NDJSON: an action line (`{"index": {"_index": "logs"}}`), then,
for `index`, `create` and `update`, a source line; `delete` has none. Each
`index` and `create` source becomes one JSON event line that the parser maps
(parsing/parse.py): `@timestamp` → ts, `log.level` or `level` → level,
`service.name` → service, `host.name` → host, `message` → message, and every
other key, nested objects flattened into dotted keys (`log.file.path`), a
field; the index is kept as the field `index`, a given `_id` as `_id`.

Items are answered one by one, as Elasticsearch does: a bad source, an action
without its source, an unknown action, `update` and `delete` (LogCaster
stores, it does not edit) get a per-item error and the others go on. Only a
body whose pairing cannot be trusted (an action line that is not a JSON
object) or an empty one is refused whole: BodyError(400).
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field
from typing import Any

import orjson

from logcaster.frontends.http.body import BodyError
from logcaster.frontends.http.payload import Texts

STORED = ("index", "create")
REFUSED = ("update", "delete")
WITHOUT_SOURCE = ("delete",)
ELLIPSIS = b"..."
MAX_FLAT_DEPTH = 16  # nested objects are flattened this deep; deeper ones stay JSON values
MAX_NAME = 256  # an index name or _id echoed back is cut to this
# Ids for items without one: unique within this process, and across restarts by
# a random prefix (Elasticsearch's own are random too); only echoed back.
_ID_PREFIX = secrets.token_hex(4)
_ids = itertools.count(1)


@dataclass(slots=True)
class Item:
    """One bulk item's answer: its action, index, id, and an error if refused."""

    action: str
    index: str | None
    id: str
    error: tuple[int, str, str] | None = None  # status, type, reason

    def render(self, seq_no: int) -> dict[str, Any]:
        if self.error is not None:
            status, kind, reason = self.error
            doc: dict[str, Any] = {
                "_index": self.index,
                "_id": self.id,
                "status": status,
                "error": {"type": kind, "reason": reason, "index": self.index},
            }
        else:
            doc = {
                "_index": self.index,
                "_id": self.id,
                "_version": 1,
                "result": "created",
                "_shards": {"total": 1, "successful": 1, "failed": 0},
                "_seq_no": seq_no,
                "_primary_term": 1,
                "status": 201,
            }
        return {self.action: doc}


@dataclass(slots=True)
class Bulk:
    """A decoded bulk body: the texts to store and every item's answer, in order."""

    items: list[Item] = field(default_factory=list)
    texts: list[bytes] = field(default_factory=list)
    truncated: int = 0

    @property
    def errors(self) -> bool:
        return any(item.error is not None for item in self.items)


def decode_bulk(body: bytes, default_index: str | None, max_line: int) -> Bulk:
    """Every item of a bulk body; BodyError(400) for a body refused whole."""
    lines = [line.strip() for line in body.split(b"\n")]
    lines = [line for line in lines if line]
    if not lines:
        raise BodyError(400, "request body is required")
    bulk = Bulk()
    i = 0
    while i < len(lines):
        number = i + 1
        action, meta = _action(lines[i], number)
        i += 1
        index = _text(meta.get("_index")) or default_index
        given_id = _text(meta.get("_id"))
        item = Item(action[:MAX_NAME], index, given_id or _new_id())
        bulk.items.append(item)
        source: bytes | None = None
        if action not in WITHOUT_SOURCE and i < len(lines):
            source = lines[i]
            i += 1
        if action in REFUSED:
            item.error = (400, "illegal_argument_exception", f"{action}: {_REFUSED_REASON}")
        elif action not in STORED:
            reason = f"unknown action [{item.action}] on line {number}: expected index or create"
            item.error = (400, "illegal_argument_exception", reason)
        elif source is None:
            item.error = (400, "action_request_validation_exception", "source is missing")
        elif index is None:
            item.error = (400, "action_request_validation_exception", "index is missing")
        else:
            try:
                text = event_text(source, index, given_id)
            except ValueError as exc:
                item.error = (400, "document_parsing_exception", f"line {number + 1}: {exc}")
                continue
            if len(text) > max_line:
                text = text[: max_line - len(ELLIPSIS)] + ELLIPSIS
                bulk.truncated += 1
            bulk.texts.append(text)
    return bulk


_REFUSED_REASON = "LogCaster stores events and does not change them; use index or create"


def _action(line: bytes, number: int) -> tuple[str, dict[str, Any]]:
    """An action line's action and metadata; BodyError if it is not one."""
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise BodyError(400, f"malformed action/metadata line [{number}]: {exc}") from exc
    if not isinstance(doc, dict) or len(doc) != 1:
        raise BodyError(
            400, f"malformed action/metadata line [{number}]: expected an object with one action"
        )
    ((action, meta),) = doc.items()
    return action, meta if isinstance(meta, dict) else {}


def _text(value: object) -> str | None:
    if isinstance(value, str) and value:
        return value[:MAX_NAME]
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _new_id() -> str:
    return f"{_ID_PREFIX}-{next(_ids)}"


def event_text(source: bytes, index: str, given_id: str | None) -> bytes:
    """A source document as one JSON event line for the parser; ValueError if not an object."""
    try:
        doc = orjson.loads(source)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON source: {exc}") from exc
    if not isinstance(doc, dict):
        raise ValueError("the source must be a JSON object")
    flat: dict[str, Any] = {}
    _flatten(doc, "", flat, 1)
    out: dict[str, Any] = {}
    if "@timestamp" in flat:
        out["ts"] = flat.pop("@timestamp")
    level = flat.pop("log.level", None)
    if level is None:
        level = flat.pop("level", None)
    if level is not None:
        out["level"] = level
    for key, name in (("service.name", "service"), ("host.name", "host")):
        if key in flat and name not in flat:
            out[name] = flat.pop(key)
    if "message" in flat:
        out["message"] = flat.pop("message")
    out.update(flat)
    out["index"] = index
    if given_id is not None:
        out["_id"] = given_id
    try:
        return orjson.dumps(out)
    except TypeError as exc:  # nested past orjson's bounds
        raise ValueError(f"the source is nested too deeply ({exc})") from exc


def _flatten(doc: dict[str, Any], prefix: str, out: dict[str, Any], depth: int) -> None:
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and depth < MAX_FLAT_DEPTH:
            _flatten(value, name + ".", out, depth + 1)
        else:
            out[name] = value


def texts_of(bulk: Bulk) -> Texts:
    return Texts(bulk.texts, bulk.truncated)
