"""Elasticsearch `_bulk` bodies into event texts, item by item (docs/shippers.md).

A bulk body is NDJSON: an action line (`{"index": {"_index": "logs"}}`), then,
for `index`, `create` and `update`, a source line; `delete` has none. Each
`index` and `create` source becomes one JSON event line for the parser
(parsing/parse.py), which maps `@timestamp` → ts, `log.level` or `level` →
level, `service.name` → service, `host.name` → host, `message` → message, and
keeps every other key as a field. The source is stored as sent with the field
`index` (the index) added, and `_id` when one is given; a source with nested
objects is rewritten with them flattened into dotted keys (`log.file.path`).

Items are answered one by one, as Elasticsearch does: a bad source, an action
without its source, an unknown action, `update` and `delete` (LogCaster
stores, it does not edit) get a per-item error and the others go on. Only a
body whose pairing cannot be trusted (an action line that is not a JSON
object) or an empty one is refused whole: BodyError(400).

The usual body takes a fast path (`_uniform`): every action line is one of a
few identical `index`/`create` lines without an `_id`, into one index (what
Beats, Fluent Bit, Vector and the clients' helpers send). Then the flat
sources get `"index"` spliced in before their closing brace, are validated in
one C pass (payload.all_objects), and the answer is rendered from one byte
template: no Python object per item. Anything else, or a body that fails the
check, takes the item-by-item path.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import secrets
from dataclasses import dataclass, field
from typing import Any

import hyperscan
import orjson

from logcaster.frontends.http.body import BodyError
from logcaster.frontends.http.elastic_filter import FilterPath
from logcaster.frontends.http.payload import Texts, all_objects

STORED = ("index", "create")
REFUSED = ("update", "delete")
WITHOUT_SOURCE = ("delete",)
ELLIPSIS = b"..."
MAX_FLAT_DEPTH = 16  # nested objects are flattened this deep; deeper ones stay JSON values
MAX_NAME = 256  # an index name or _id echoed back is cut to this
# Ids for items without one: unique within this process, and across restarts by
# a random prefix (Elasticsearch's own are random too); only echoed back.
_ID_PREFIX = secrets.token_hex(4)
_MAX_UNIFORM_ACTIONS = 4  # distinct action lines the fast path parses
_SUCCESS = (
    b'","_version":1,"result":"created",'
    b'"_shards":{"total":1,"successful":1,"failed":0},"_seq_no":%d,"_primary_term":1,"status":201}}'
)  # an item's id number is its _seq_no too: both only grow, as in one shard


class _Ids:
    next = 1  # the number of the next generated id; the loop's thread owns it


def _take_ids(count: int) -> int:
    first = _Ids.next
    _Ids.next += count
    return first


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


@dataclass(frozen=True, slots=True)
class _Run:
    """Items that all succeeded with generated ids: `count` of `action` into `index`."""

    action: str
    index: str
    first_id: int
    count: int

    def item(self, i: int) -> dict[str, Any]:
        """The `i`th item's answer, as `Bulk._items_json` writes it."""
        n = self.first_id + i
        return Item(self.action, self.index, f"{_ID_PREFIX}-{n}").render(n)


@dataclass(slots=True)
class Bulk:
    """A decoded bulk body: the texts to store and every item's answer, in order."""

    items: list[Item] = field(default_factory=list)
    texts: list[bytes] = field(default_factory=list)
    truncated: int = 0
    run: _Run | None = None  # set instead of `items` by the fast path

    @property
    def errors(self) -> bool:
        return any(item.error is not None for item in self.items)

    def answer(self, took: int, keep: FilterPath | None = None) -> bytes:
        """The answer `{"took", "errors", "items"}` as JSON, `filter_path` applied."""
        head = {"took": took, "errors": self.errors}
        if keep is None:
            return orjson.dumps(head)[:-1] + b',"items":' + self._items_json() + b"}"
        run = self.run
        if run is None:
            items = [item.render(seq) for seq, item in enumerate(self.items)]
            return orjson.dumps(keep.apply({**head, "items": items}))
        one, two = (keep.apply({**head, "items": [run.item(n)]}) for n in (0, 1))
        if one != two:  # the filter keeps an id or a _seq_no: item by item
            items = [run.item(i) for i in range(run.count)]
            return orjson.dumps(keep.apply({**head, "items": items}))
        # The filter leaves every item alike (Beats keep only `status`): one, repeated.
        kept = one.pop("items", None)
        body = orjson.dumps(one)
        if kept is None:
            return body
        items_json = b"[" + b",".join([orjson.dumps(kept[0])] * run.count) + b"]"
        return body[:-1] + (b"," if one else b"") + b'"items":' + items_json + b"}"

    def _items_json(self) -> bytes:
        if self.run is None:
            return orjson.dumps([item.render(seq) for seq, item in enumerate(self.items)])
        run = self.run
        head = orjson.dumps({run.action: {"_index": run.index}})[:-2]
        template = head.replace(b"%", b"%%") + b',"_id":"' + _ID_PREFIX.encode() + b"-%d" + _SUCCESS
        numbers = range(run.first_id, run.first_id + run.count)
        return b"[" + b",".join([template % (n, n) for n in numbers]) + b"]"


def decode_bulk(body: bytes, default_index: str | None, max_line: int) -> Bulk:
    """Every item of a bulk body; BodyError(400) for a body refused whole."""
    lines = body.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    if lines:
        bulk = _uniform(body, lines, default_index, max_line)
        if bulk is not None:
            return bulk
    lines = [line.strip() for line in lines]
    lines = [line for line in lines if line]
    if not lines:
        raise BodyError(400, "request body is required")
    return _item_by_item(lines, default_index, max_line)


def _uniform(body: bytes, lines: list[bytes], default: str | None, max_line: int) -> Bulk | None:
    """The fast path's answer for the usual body (module docstring), or None."""
    actions = lines[0::2]
    sources = lines[1::2]
    if len(actions) != len(sources):
        return None
    distinct = set(actions)
    if len(distinct) > _MAX_UNIFORM_ACTIONS:
        return None
    targets = set()  # (action, index) of every distinct action line
    for line in distinct:
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(doc, dict) or len(doc) != 1:
            return None
        ((action, meta),) = doc.items()
        if action not in STORED or not isinstance(meta, dict) or meta.get("_id") is not None:
            return None
        targets.add((action, _text(meta.get("_index")) or default))
    if len(targets) != 1:
        return None  # index and create, or two indices: each item answers its own
    ((action, index),) = targets
    if index is None:
        return None
    rewrite = _to_rewrite(sources)
    if rewrite is None:
        return None
    plain = [source for i, source in enumerate(sources) if i not in rewrite] if rewrite else sources
    if plain and not all_objects(body, plain):
        return None  # a bad source is named item by item
    tail = b',"index":' + orjson.dumps(index) + b"}"
    texts = [source[:-1] + tail for source in sources]
    for i in rewrite:
        try:
            texts[i] = event_text(sources[i], index, None)
        except ValueError:
            return None  # its error is answered item by item
    if max(map(len, texts)) > max_line:
        return None  # item by item: a source rewritten compactly may fit, else it is cut
    run = _Run(action, index, _take_ids(len(sources)), len(sources))
    return Bulk(texts=texts, run=run)


def _to_rewrite(sources: list[bytes]) -> set[int] | None:
    """The positions of the sources the fast path must not store as sent, or
    None when there are too many for it to pay. One Hyperscan pass over the
    joined sources (a `bytes.find` loop or a regex cost ten times as much)
    finds, each hit mapped to its source by its offset:

    - a nested object to flatten: a `{` after `:`, `[`, `,` or a space (one
      after anything else, `Close({0xc0...`, is inside a string);
    - an empty object, `{ }`, which has no key to splice `"index"` after;
    - a number orjson reads as infinity (`1e400`, 300 digits), which msgspec's
      check lets through: the parser would then keep the source as plain text.

    A flagged source goes through `event_text` (orjson), so a bad one gets its
    per-item error. A hit inside a string only costs that item the slow way."""
    joined = b"\n".join(sources)
    hits = _Hits(len(sources) // 8 + 16)
    try:
        _flags_db().scan(joined, match_event_handler=_on_hit, context=hits)
    except hyperscan.ScanTerminated:
        return None  # mostly nested (Filebeat's ECS documents): item by item
    if not hits:
        return set()
    starts = list(itertools.accumulate((len(source) + 1 for source in sources), initial=0))
    return {bisect.bisect_right(starts, at) - 1 for at in hits}


class _Hits(list[int]):
    """Match offsets, up to `cap`."""

    def __init__(self, cap: int) -> None:
        super().__init__()
        self.cap = cap


def _on_hit(_id: int, _start: int, end: int, _flags: int, hits: object) -> bool:
    assert isinstance(hits, _Hits)
    hits.append(end - 1)
    return len(hits) > hits.cap  # true stops the scan


_FLAGS = (rb"[:\[, \t\r]\{", rb"^\{[ \t\r]*\}", rb"[eE]\+?[0-9]{3}", rb"[0-9]{300}")


@functools.cache
def _flags_db() -> hyperscan.Database:
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    flags = [0, hyperscan.HS_FLAG_MULTILINE, 0, 0]
    db.compile(expressions=list(_FLAGS), ids=list(range(len(_FLAGS))), flags=flags)
    return db


def _item_by_item(lines: list[bytes], default_index: str | None, max_line: int) -> Bulk:
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
    return f"{_ID_PREFIX}-{_take_ids(1)}"


def event_text(source: bytes, index: str, given_id: str | None) -> bytes:
    """A source document as one JSON event line for the parser; ValueError if not an object."""
    try:
        doc = orjson.loads(source)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON source: {exc}") from exc
    if not isinstance(doc, dict):
        raise ValueError("the source must be a JSON object")
    out: dict[str, Any] = {}
    _flatten(doc, "", out, 1)
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
