"""Loki push bodies into event texts (`POST /loki/api/v1/push`, loki.py).

Two encodings, as Loki takes them:
- JSON (`application/json`): `{"streams": [{"stream": {labels}, "values":
  [["<unix ns as a string>", "line", {structured metadata}?], ...]}]}`.
- protobuf (`application/x-protobuf`, or no type): a `logproto.PushRequest`
  (loki_push.proto) compressed as one snappy block, with no Content-Encoding
  (Promtail's and Alloy's way). The labels come as a Prometheus selector text,
  `{app="api", level="error"}`, with Go's string escapes in the values.

Each entry becomes ONE JSON object line that the parser maps (parsing/parse.py):
`message` (the line), `ts` (unix seconds), `level` from the first label or
metadata key of LEVEL_KEYS, `service` from SERVICE_KEYS, and every label and
structured metadata pair as a field (metadata wins over a label of the same
name). A label named like one of those four keys is kept as `loki_<name>`.

Everything is bounded: the stream's label set (MAX_LABELS pairs and
MAX_LABELS_BYTES), an entry's metadata (MAX_METADATA pairs, MAX_METADATA_BYTES),
and the snappy block's declared size (`http.max_body_bytes`). A body over these
is refused whole (400, 413), as Loki refuses a push.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import cramjam
import msgspec
import orjson
from google.protobuf.message import DecodeError

from logcaster.frontends.http.body import BodyError
from logcaster.frontends.http.loki_push_pb2 import PushRequest
from logcaster.frontends.http.payload import ELLIPSIS, Texts

JSON_TYPES = frozenset({"application/json", "text/json"})
PROTOBUF_TYPES = frozenset(
    {"", "application/x-protobuf", "application/protobuf", "application/octet-stream"}
)
LEVEL_KEYS = ("level", "severity", "detected_level")
SERVICE_KEYS = ("service_name", "service", "app", "job")
RESERVED = frozenset({"message", "ts", "level", "service"})
MAX_LABELS = 64  # label pairs in one stream's label set
MAX_LABELS_BYTES = 16 * 1024  # names and values of one stream's label set
MAX_METADATA = 128  # structured metadata pairs of one entry
MAX_METADATA_BYTES = 64 * 1024

# One `name="value"` pair of a selector and what follows it (`,` or `}`). A name
# is bare or quoted (Prometheus' UTF-8 names); a value in "", '' or `` quotes.
_PAIR = re.compile(
    r'\s*(?:([A-Za-z_][A-Za-z0-9_.:]*)|"((?:[^"\\]|\\.)*)")\s*=\s*'
    r'(?:"((?:[^"\\]|\\.)*)"|\'((?:[^\'\\]|\\.)*)\'|`([^`]*)`)\s*([,}])',
    re.DOTALL,
)
_ESCAPE = re.compile(
    rb"\\(?:([abfnrtv\\'\"])|x([0-9a-fA-F]{2})|([0-7]{3})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8}))"
)
_SIMPLE = {
    b"a": b"\a", b"b": b"\b", b"f": b"\f", b"n": b"\n", b"r": b"\r", b"t": b"\t",
    b"v": b"\v", b"\\": b"\\", b"'": b"'", b'"': b'"',
}  # fmt: skip


def decode(body: bytes, content_type: str, max_line: int, max_body: int) -> Texts:
    """The event texts of a push body; BodyError (400, 413, 415) for one refused."""
    if content_type in JSON_TYPES:
        fast = _from_json_raw(body, max_line)
        return fast if fast is not None else _from_json(body, max_line)
    if content_type in PROTOBUF_TYPES:
        return _from_protobuf(_unsnappy(body, max_body), max_line)
    raise BodyError(
        415,
        f"unsupported Content-Type {content_type!r}: application/json or application/x-protobuf",
    )


def _unsnappy(body: bytes, max_body: int) -> bytes:
    """The snappy block's contents, its declared size checked before inflating."""
    try:
        size = cramjam.snappy.decompress_raw_len(body)
        if size > max_body:
            raise BodyError(413, f"decoded body of {size} bytes, over http.max_body_bytes")
        return bytes(cramjam.snappy.decompress_raw(body))
    except cramjam.DecompressionError as exc:
        raise BodyError(400, f"bad snappy-compressed body: {exc}") from exc


def _from_protobuf(raw: bytes, max_line: int) -> Texts:
    request = PushRequest()
    try:
        request.ParseFromString(raw)
    except DecodeError as exc:
        raise BodyError(400, f"bad protobuf PushRequest: {exc}") from exc
    out = _Out(max_line)
    for i, stream in enumerate(request.streams):
        labels = parse_labels(stream.labels, f"stream {i}")
        for j, entry in enumerate(stream.entries):
            stamp = entry.timestamp
            ns = stamp.seconds * 1_000_000_000 + stamp.nanos
            pairs = entry.structuredMetadata
            if pairs:
                what = f"stream {i}, entry {j}"
                metadata = _bounded(((p.name, p.value) for p in pairs), what, len(pairs))
            else:
                metadata = None
            out.add(entry.line, ns, labels, metadata)
    return out.texts()


def _from_json(body: bytes, max_line: int) -> Texts:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BodyError(400, f"invalid JSON: {exc}") from exc
    streams = doc.get("streams") if isinstance(doc, dict) else None
    if not isinstance(streams, list):
        raise BodyError(400, 'expected {"streams": [...]}')
    out = _Out(max_line)
    for i, stream in enumerate(streams):
        if not isinstance(stream, dict):
            raise BodyError(400, f"stream {i}: expected an object")
        given = stream.get("stream", {})
        values = stream.get("values", [])
        if not isinstance(given, dict) or not isinstance(values, list):
            raise BodyError(400, f'stream {i}: expected "stream": {{labels}}, "values": [...]')
        labels = _bounded(given.items(), f"stream {i}", len(given), MAX_LABELS, MAX_LABELS_BYTES)
        add = out.add
        for j, value in enumerate(values):
            # The common entry, checked and taken at once: ["<ns digits>", "line"].
            if type(value) is list and len(value) == 2:
                ns, line = value
                if (
                    type(ns) is str
                    and type(line) is str
                    and ns.isascii()
                    and ns.isdigit()
                    and len(ns) <= 19
                ):
                    add(line, int(ns), labels, None)
                    continue
            what = f"stream {i}, entry {j}"
            if not isinstance(value, list) or len(value) not in (2, 3):
                raise BodyError(400, f'{what}: expected ["<unix ns>", "line", {{metadata}}?]')
            line = value[1]
            if not isinstance(line, str):
                raise BodyError(400, f"{what}: the line must be a string")
            metadata = None
            if len(value) == 3 and value[2]:
                given_meta = value[2]
                if not isinstance(given_meta, dict):
                    raise BodyError(400, f"{what}: structured metadata must be an object")
                metadata = _bounded(given_meta.items(), what, len(given_meta))
            out.add(line, _json_ns(value[0], what), labels, metadata)
    return out.texts()


class _RawStream(msgspec.Struct):
    stream: dict[str, str] = {}
    values: list[list[msgspec.Raw]] = []


class _RawPush(msgspec.Struct):
    streams: list[_RawStream]


_RAW_PUSH = msgspec.json.Decoder(_RawPush)


def _from_json_raw(body: bytes, max_line: int) -> Texts | None:
    """The usual JSON push, its lines never decoded: None for anything else.

    msgspec reads the body's structure in one C pass and hands each entry's
    time and line as raw JSON (msgspec.Raw), so an entry's text is its line's
    JSON string as sent between `{"message":` and its time in seconds, written
    from the nanosecond digits (`1700000000.123456789`), then the stream's
    fields. Entries with structured metadata, times that are not 10 to 19
    digits, lines past the bound, or a body of another shape: None, and
    `_from_json` takes the body with its per-entry checks and error messages.
    msgspec checks the escapes inside the strings it skips (a lone surrogate
    `\\ud800` fails the body, as in `_from_json`) and UTF-8 is checked apart.
    """
    try:
        body.decode("utf-8")  # Raw does not look inside strings
        push = _RAW_PUSH.decode(body)
    except (UnicodeDecodeError, msgspec.DecodeError, RecursionError):
        return None
    texts: list[bytes] = []
    append = texts.append
    join = b"".join
    quote, zero = _QUOTE, _ZERO
    message, ts, dot = b'{"message":', b',"ts":', b"."
    for i, stream in enumerate(push.streams):
        given = stream.stream
        labels = _bounded(given.items(), f"stream {i}", len(given), MAX_LABELS, MAX_LABELS_BYTES)
        shared = _splice(_fields(labels))
        for entry in stream.values:
            if len(entry) != 2:
                return None
            ns = bytes(entry[0])
            digits = ns[1:-1]
            if not 12 <= len(ns) <= 21 or ns[0] != quote or not digits.isdigit():
                return None
            text = join((message, entry[1], ts, digits[:-9], dot, digits[-9:], shared))
            if text[_LINE_AT] != quote or digits[0] == zero:
                return None  # a line that is not a JSON string; a time led by 0
            append(text)
    if max(map(len, texts), default=0) > max_line:
        return None  # `_from_json` cuts the line itself, keeping its JSON whole
    return Texts(texts)


_QUOTE, _ZERO = ord('"'), ord("0")
_LINE_AT = len(b'{"message":')  # where an entry's line starts in its text


def _json_ns(value: object, what: str) -> int:
    """A JSON entry's time: unix nanoseconds as a string (Loki's), or a number."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63:
        return value
    raise BodyError(400, f"{what}: the time must be unix nanoseconds as a string, got {value!r}")


def _bounded(
    pairs: Iterable[tuple[object, object]],
    what: str,
    count: int,
    max_count: int = MAX_METADATA,
    max_bytes: int = MAX_METADATA_BYTES,
) -> dict[str, str]:
    """Name/value pairs as a dict of strings, within the bounds; BodyError past them."""
    kind = "labels" if max_count == MAX_LABELS else "structured metadata pairs"
    if count > max_count:
        raise BodyError(400, f"{what}: {count} {kind}, over {max_count}")
    out: dict[str, str] = {}
    size = 0
    for name, value in pairs:
        if not isinstance(name, str) or not isinstance(value, str):
            raise BodyError(400, f"{what}: {kind} must be strings")
        size += len(name) + len(value)
        if size > max_bytes:
            raise BodyError(400, f"{what}: {kind} over {max_bytes} bytes")
        out[name] = value
    return out


def parse_labels(text: str, what: str = "labels") -> dict[str, str]:
    """A Prometheus label selector's pairs: `{a="x", b="y\\"z"}` -> {"a": "x", "b": 'y"z'}."""
    if len(text) > MAX_LABELS_BYTES + 4 * MAX_LABELS + 2:
        raise BodyError(400, f"{what}: label set over {MAX_LABELS_BYTES} bytes")
    body = text.strip()
    if not body.startswith("{") or not body.endswith("}"):
        raise BodyError(400, f'{what}: labels must be a selector like {{app="x"}}')
    labels: dict[str, str] = {}
    pos, end = 1, len(body)
    if body[1:-1].strip() == "":
        return labels
    while True:
        m = _PAIR.match(body, pos)
        if m is None:
            raise BodyError(
                400, f"{what}: bad label selector at offset {pos}: {body[pos : pos + 40]!r}"
            )
        name = m[1] if m[1] is not None else _unquote(m[2])
        if m[3] is not None:
            value = _unquote(m[3])
        elif m[4] is not None:
            value = _unquote(m[4])
        else:
            value = m[5]
        labels[name] = value
        if len(labels) > MAX_LABELS:
            raise BodyError(400, f"{what}: over {MAX_LABELS} labels")
        pos = m.end()
        if m[6] == "}":
            break
    if pos != end:
        raise BodyError(400, f"{what}: text after the label selector's end")
    return labels


def _unquote(quoted: str) -> str:
    """Go's string escapes (Prometheus writes label values with strconv.Quote)."""
    if "\\" not in quoted:
        return quoted
    raw = _ESCAPE.sub(_unescape, quoted.encode("utf-8", "surrogatepass"))
    return raw.decode("utf-8", "replace")


def _unescape(m: re.Match[bytes]) -> bytes:
    if m[1] is not None:
        return _SIMPLE[m[1]]
    if m[2] is not None:
        return bytes((int(m[2], 16),))
    if m[3] is not None:
        code = int(m[3], 8)
        return bytes((code,)) if code < 256 else m[0]
    code = int(m[4] or m[5], 16)
    return chr(code).encode("utf-8", "replace") if code <= 0x10FFFF else m[0]


class _Out:
    """The texts of a body's entries, one JSON object line each. A stream's
    fields are serialized once and spliced after each entry's own message and
    ts (`_fields` renames the label names those would collide with)."""

    __slots__ = ("_max_line", "_shared", "_stream", "_texts", "truncated")

    def __init__(self, max_line: int) -> None:
        self._max_line = max_line
        self._texts: list[bytes] = []
        self.truncated = 0
        self._stream: dict[str, str] | None = None
        self._shared = b"}"  # `,"level":...}`: the stream's fields, closing the object

    def add(
        self, line: str, ns: int, labels: dict[str, str], metadata: dict[str, str] | None
    ) -> None:
        if labels is not self._stream:  # once per stream
            self._stream = labels
            self._shared = _splice(_fields(labels))
        shared = _splice(_fields({**labels, **metadata})) if metadata else self._shared
        if len(line) > self._max_line // 4 and len(line.encode()) > self._max_line:
            cut = line.encode()[: self._max_line - len(ELLIPSIS)]
            line = cut.decode("utf-8", "ignore") + ELLIPSIS.decode()
            self.truncated += 1
        own = orjson.dumps({"message": line, "ts": ns / 1e9} if ns else {"message": line})
        self._texts.append(own[:-1] + shared)

    def texts(self) -> Texts:
        return Texts(self._texts, self.truncated)


def _splice(fields: dict[str, object]) -> bytes:
    """`fields` as the tail of a JSON object: `,"k":v,...}` (or `}` alone)."""
    return b"," + orjson.dumps(fields)[1:] if fields else b"}"


def _fields(pairs: dict[str, str]) -> dict[str, object]:
    """Level, service and the pairs as fields, in an entry's JSON object."""
    out: dict[str, object] = {}
    for key in LEVEL_KEYS:
        if pairs.get(key):
            out["level"] = pairs[key]
            break
    for key in SERVICE_KEYS:
        if pairs.get(key):
            out["service"] = pairs[key]
            break
    for name, value in pairs.items():
        if name in RESERVED:
            if name in ("level", "service") and out.get(name) == value:
                continue  # said once, as the event's own level or service
            name = f"loki_{name}"
        out[name] = value
    return out
