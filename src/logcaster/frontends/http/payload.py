"""`POST /api/v1/logs` bodies into event texts, all or nothing (SPEC §2).

- `application/json`: one object (one event), or an array of objects and
  strings (a string is a text line; one with newlines is one multi-line event).
  A body that is not one JSON document but is valid NDJSON is taken as NDJSON:
  shippers label their NDJSON batches both ways.
- `application/x-ndjson` (also `jsonl`, `json-seq`-free variants): one object
  per line; blank lines are skipped.
- Anything else (`text/plain`, none, curl's form default): text lines, framed
  and grouped (stack traces) exactly like a TCP connection's.

An object becomes its JSON text on one line, parsed later like a JSON line
on TCP (SPEC §3); NDJSON lines are kept as sent. Validation is one orjson call over the
whole body where it can be: an NDJSON body is checked as one JSON array of
raw elements (`all_objects`), and only a failure walks it line by line to
name the first bad line. A text over
`ingest.max_line_bytes` is cut and marked `...`, as on TCP.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import orjson

from logcaster.frontends.http.body import BodyError
from logcaster.pipeline.framing import Framer

JSON_TYPES = frozenset({"application/json", "text/json"})
NDJSON_TYPES = frozenset(
    {"application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines"}
)
ELLIPSIS = b"..."
_RAW_ARRAY = msgspec.json.Decoder(list[msgspec.Raw])


class Texts:
    """Event texts decoded from one body, and how many were cut to the line bound."""

    __slots__ = ("texts", "truncated")

    def __init__(self, texts: list[bytes], truncated: int = 0) -> None:
        self.texts = texts
        self.truncated = truncated


def decode(body: bytes, content_type: str, max_line: int, framer: Callable[[], Framer]) -> Texts:
    """The event texts of a body; BodyError(400) naming the first bad element or line."""
    if content_type in NDJSON_TYPES:
        return _ndjson(body, max_line)
    if content_type in JSON_TYPES:
        return _json(body, max_line)
    return _text(body, framer())


def _text(body: bytes, framer: Framer) -> Texts:
    texts = framer.feed(body)
    texts.extend(framer.close())
    return Texts(texts, framer.truncated)


def _json(body: bytes, max_line: int) -> Texts:
    stripped = body.strip()
    if not stripped:
        return Texts([])
    try:
        doc = orjson.loads(stripped)
    except orjson.JSONDecodeError as exc:
        if b"\n" in stripped:
            return _ndjson(body, max_line)  # NDJSON sent as application/json
        raise BodyError(400, f"invalid JSON: {exc}") from exc
    if isinstance(doc, dict):
        return fit([_object_text(stripped, doc, "the object")], max_line)
    if not isinstance(doc, list):
        raise BodyError(400, "expected a JSON object or an array of objects and strings")
    raws = _raw_elements(stripped, len(doc))
    texts: list[bytes] = []
    for i, item in enumerate(doc):
        if isinstance(item, dict):
            raw = bytes(memoryview(raws[i])) if raws is not None else b"\n"
            texts.append(_object_text(raw, item, f"element {i}"))
        elif isinstance(item, str):
            texts.append(item.encode("utf-8", "replace"))
        else:
            kind = "null" if item is None else type(item).__name__
            raise BodyError(400, f"element {i}: expected an object or a string, got {kind}")
    return fit(texts, max_line)


def _raw_elements(array: bytes, count: int) -> list[msgspec.Raw] | None:
    """The array's elements as raw slices of the body (None if msgspec cannot say)."""
    try:
        raws = _RAW_ARRAY.decode(array)
    except (msgspec.DecodeError, RecursionError):
        return None
    return raws if len(raws) == count else None


def _object_text(raw: bytes, doc: dict[str, object], what: str) -> bytes:
    """An object's event text: its own bytes when they are one line, else compact JSON.

    The text is always an exact-size copy: orjson's output (and a slice of a
    large body) can carry a far larger buffer, which a queued event would keep
    alive (4 KiB each, a 10 MiB array of `{}` once held 13 GB).
    """
    if b"\n" not in raw and b"\r" not in raw:
        return raw
    try:
        return memoryview(orjson.dumps(doc)).tobytes()
    except TypeError as exc:  # nested past orjson's 255 levels
        raise BodyError(400, f"{what}: nested too deeply ({exc})") from exc


def _ndjson(body: bytes, max_line: int) -> Texts:
    lines = body.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    if lines and all_objects(body, lines):
        return fit(lines, max_line)  # the usual body: nothing to trim
    # Blank lines, CRLF endings or blanks around an object, or an error: trim, try again.
    lines = [line.strip() for line in lines]
    lines = [line for line in lines if line]
    if not lines:
        return Texts([])
    if all_objects(body, lines):
        return fit(lines, max_line)
    # Something is wrong: find the first bad line and name it (1-based, blank lines counted).
    for number, raw in enumerate(body.split(b"\n"), 1):
        line = raw.strip()
        if not line:
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise BodyError(400, f"line {number}: invalid JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise BodyError(400, f"line {number}: expected a JSON object")
    # Lines valid alone but not together can only be the line-length check below.
    raise BodyError(
        400, "invalid NDJSON: each line must hold exactly one JSON object, nested at most 255 deep"
    )


def all_objects(body: bytes, lines: list[bytes]) -> bool:
    """Whether every line is exactly one JSON object, checked in one C pass.

    The lines are decoded as one JSON array of raw elements (msgspec's `Raw`:
    no Python object is built per event). Each line opens with `{`, so element
    i starts where line i starts; if it is also as long as the line, it is the
    whole line and nothing else. That rules out lines that are only valid
    together (`{"a":[{}` then `{}]}`) or hold two objects (`{},{}`). UTF-8 is
    checked apart, since Raw does not look inside strings.
    """
    if not all(line[:1] == b"{" for line in lines):
        return False
    try:
        body.decode("utf-8")
        elements = _RAW_ARRAY.decode(b"[" + b",".join(lines) + b"]")
    except (UnicodeDecodeError, msgspec.DecodeError, RecursionError):
        return False
    if len(elements) != len(lines):
        return False
    views: map[memoryview] = map(memoryview, elements)  # msgspec.Raw is a buffer
    return list(map(len, views)) == list(map(len, lines))


def fit(texts: list[bytes], max_line: int) -> Texts:
    """Cut texts over the line bound as TCP does (`...` marks the cut)."""
    if max(map(len, texts), default=0) <= max_line:
        return Texts(texts)  # the usual case, without a loop in Python
    cut = 0
    for i, text in enumerate(texts):
        if len(text) > max_line:
            texts[i] = text[: max_line - len(ELLIPSIS)] + ELLIPSIS
            cut += 1
    return Texts(texts, cut)
