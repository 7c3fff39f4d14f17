"""Field encryption (SPEC §9, docs/encryption.md): the values of configured fields
are stored as markers carrying a keyed HMAC of the value and a Fernet token.

    user_id=alice            ->  user_id=enc:v1:<index>:<token>
    {"email":"a@b.c", ...}   ->  {"email":"enc:v1:<index>:<token>", ...}

`<index>` is HMAC-SHA256(hmac key, the value as the parser reads it), cut to
128 bits, base64url: equal values have equal indexes, so `email=a@b.c` is
answered by looking for `email=enc:v1:<index of a@b.c>:` (query/model.py
compares a field value starting with the marker prefix as a prefix).
`<token>` is Fernet (AES-128-CBC + HMAC-SHA256, `MultiFernet` for rotation)
of the exact text the marker replaced: `"a@b.c"` with its JSON quotes,
`alice`, or `"a b"` with its logfmt quotes; so `reveal_text` gives back the
event as it was sent (a JSON line re-serialized). Both parts are base64url
without padding: a marker needs no quoting in logfmt or JSON, and the parser
reads it back as the field's whole value.

Where: the top-level keys of a JSON line (the parser's fields), `name=value`
pairs anywhere else in the text (logfmt, key=value, syslog messages and
structured data), and `name=value` pairs inside a JSON line's string values
(the message, where the parser finds them). Texts that do not contain any
configured name are passed over with one C-level test each.
"""

from __future__ import annotations

import base64
import hmac
import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from itertools import accumulate
from typing import Any

import orjson
from cryptography.fernet import InvalidToken

from logcaster.metrics.registry import Metric, Readings
from logcaster.query.model import SEALED_PREFIX
from logcaster.security.keys import FieldKeys

MARK = SEALED_PREFIX.encode()
INDEX_BYTES = 16  # HMAC-SHA256 cut to 128 bits: 22 base64url characters
# Markers seen again (a forwarded copy, a replay) are left as they are.
_B64 = rb"[A-Za-z0-9_-]"
MARKER = re.compile(MARK + _B64 + rb"{22}:(" + _B64 + rb"+)")
_MARKER_STR = re.compile(MARKER.pattern.decode())
# Reveal: a quoted marker (a JSON value, a quoted logfmt value) or a bare one.
_SEALED = re.compile(
    rb'"' + MARK + _B64 + rb"{22}:(" + _B64 + rb'+)"|' + MARK + _B64 + rb"{22}:(" + _B64 + rb"+)"
)
_ESCAPE = re.compile(r"\\(.)", re.S)
# A seal cache of this many values at most; cleared whole when full.
CACHE_VALUES = 65_536
CACHE_SPAN_BYTES = 256  # longer values are not cached

FIELDS_ENCRYPTED = Metric(
    "fields_encrypted",
    "counter",
    "Values of encrypt.fields stored encrypted",
    stats="FieldsEncrypted",
)
FIELDS_UNSEALED = Metric(
    "fields_unsealed",
    "counter",
    "JSON lines whose configured fields could not be rewritten (nested past orjson's limit)",
)


def b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


class FieldCipher:
    """Values to markers and back with one set of keys (replaced whole on reload).

    Sealing caches text -> marker (bounded, one cache per kind of text, as a
    logfmt `true` and a JSON `true` are read as different values): equal
    values get the same marker, which tells no more than their equal indexes
    do already, and a repeated user id or address costs a dict lookup instead
    of a Fernet encryption (~7 us).
    """

    def __init__(self, keys: FieldKeys) -> None:
        self.keys = keys
        self._pairs: dict[bytes, bytes] = {}  # a logfmt value as written -> marker
        self._json: dict[bytes, bytes] = {}  # a JSON value as written -> marker

    def index(self, value: str) -> bytes:
        """The marker prefix every sealing of `value` starts with."""
        mac = hmac.digest(self.keys.hmac_key, value.encode(), "sha256")[:INDEX_BYTES]
        return MARK + b64(mac) + b":"

    def _seal(self, value: str, span: bytes) -> bytes:
        # A Fernet token is base64url already: only its padding goes.
        return self.index(value) + self.keys.fernet.encrypt(span).rstrip(b"=")

    def seal_pair(self, raw: bytes) -> bytes:
        """The marker for a logfmt value as written (`alice`, `"a b"`, `'a b'`)."""
        marker = self._pairs.get(raw)
        if marker is None:
            head = raw[:1]
            if head == b'"' or head == b"'":
                value = raw[1:-1].decode("utf-8", "replace")
                if head == b'"' and "\\" in value:
                    value = _ESCAPE.sub(r"\1", value)  # as the parser unescapes it
            else:
                value = raw.decode("utf-8", "replace")
            marker = self._seal(value, raw)
            _remember(self._pairs, raw, marker)
        return marker

    def seal_json(self, raw: bytes, value: str) -> bytes:
        """The marker for a JSON value written `raw`, compared as `value`."""
        marker = self._json.get(raw)
        if marker is None:
            marker = self._seal(value, raw)
            _remember(self._json, raw, marker)
        return marker

    def open(self, token: bytes) -> bytes | None:
        """The text a marker's token replaced, or None (another key, forged, damaged)."""
        try:
            return self.keys.fernet.decrypt(token + b"=" * (-len(token) % 4))
        except (InvalidToken, ValueError):
            return None


def _remember(cache: dict[bytes, bytes], raw: bytes, marker: bytes) -> None:
    if len(raw) <= CACHE_SPAN_BYTES:
        if len(cache) >= CACHE_VALUES:
            cache.clear()
        cache[raw] = marker


# The bytes a logfmt key cannot follow (the parser's `(?<![\w.-])`, ASCII: a
# non-ASCII letter there makes the parser skip the pair, and sealing it anyway
# hides more, never less).
_KEY_PART = bytes(
    1 if chr(c).isascii() and (chr(c).isalnum() or chr(c) in "_.-") else 0 for c in range(256)
)
# A logfmt value as the parser reads it (parsing/parse.py _LOGFMT).
_PAIR_VALUE = re.compile(rb""""(?:[^"\\]|\\.)*"|'[^']*'|[^\s,;"']+""")
# A JSON string as written, escapes and all.
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_JSON_SPACE = frozenset(b" \t\r\n")
_JSON_SCALAR = re.compile(rb"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|true|false|null")
_PLUS_ONE = (1).__add__  # a text's length and its separator in the joined batch
# A value's place in a text: start, end, and its JSON value's string (None: a pair's).
Span = tuple[int, int, str | None]


def _skip_space(data: bytes, pos: int) -> int:
    n = len(data)
    while pos < n and data[pos] in _JSON_SPACE:
        pos += 1
    return pos


def _escaped(data: bytes, quote: int) -> bool:
    """Whether the quote at `quote` follows an odd run of backslashes (inside a string)."""
    run = 0
    while quote - run - 1 >= 0 and data[quote - run - 1] == 0x5C:
        run += 1
    return run % 2 == 1


def _json_text(token: bytes) -> str | None:
    """The string a JSON string token stands for."""
    if b"\\" not in token:
        return token[1:-1].decode("utf-8", "replace")
    try:
        value = orjson.loads(token)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, str) else None


class FieldEncryptor:
    """The `Rewriter` (pipeline/pipeline.py) that seals configured fields."""

    def __init__(self, names: Sequence[str], keys: FieldKeys) -> None:
        self.names = tuple(names)
        self._names_set = frozenset(names)
        self._names_b = tuple(n.encode() for n in names)
        self._pair_keys = tuple(n + b"=" for n in self._names_b)
        self._json_keys = tuple(b'"' + n + b'"' for n in self._names_b)
        self.cipher = FieldCipher(keys)
        self.sealed = 0  # values sealed, all time
        self.unsealed = 0  # JSON lines orjson could not write back

    def use_keys(self, keys: FieldKeys) -> None:
        """Seal with new keys from now on (SIGHUP after `logcaster keys rotate`)."""
        self.cipher = FieldCipher(keys)

    def rewrite(self, texts: list[bytes]) -> list[bytes]:
        """The batch with its configured values sealed. The texts that may hold
        one are found in the batch joined: a substring search in C per name and
        per text that has it, none per text that does not."""
        if len(texts) < 4:
            hits: Iterable[int] = [
                i for i, text in enumerate(texts) if any(n in text for n in self._names_b)
            ]
        else:
            hits = self._candidates(texts)
        out: list[bytes] | None = None
        for i in hits:
            text = texts[i]
            sealed = self.seal_text(text)
            if sealed is not text:
                if out is None:
                    out = list(texts)
                out[i] = sealed
        return texts if out is None else out

    def _candidates(self, texts: list[bytes]) -> list[int]:
        """Indexes of the texts holding a configured name, in order."""
        blob = b"\0".join(texts)
        find = blob.find
        found: set[int] = set()
        ends: list[int] | None = None  # each text's end in `blob`, once needed
        for name in self._names_b:
            pos = find(name)
            if pos < 0:
                continue
            if ends is None:
                ends = list(accumulate(map(_PLUS_ONE, map(len, texts))))
            while pos >= 0:
                i = bisect_right(ends, pos)
                found.add(i)
                pos = find(name, ends[i])  # on to the next text
        return sorted(found)

    def readings(self, out: Readings) -> None:
        out.add(FIELDS_ENCRYPTED, self.sealed)
        out.add(FIELDS_UNSEALED, self.unsealed)

    # ---- sealing -------------------------------------------------------------------
    def seal_text(self, text: bytes) -> bytes:
        """`text` with every configured field's value sealed (`text` itself if none).

        Values are replaced where they are written: the rest of the text stays
        byte for byte. A JSON line whose value is an object or array, or with a
        pair whose value holds a JSON escape, is parsed and written again whole.
        """
        if text[:1] != b"{":
            return self._apply(text, self._pair_spans(text, in_json=False))
        nl = text.find(b"\n")
        first = text if nl < 0 else text[:nl]
        spans = self._json_spans(first)
        if spans is not None:
            sealed = self._apply(first, spans)
        else:
            whole = self._seal_json_whole(first)
            if whole is None:  # not a JSON object: text, as the parser reads it
                return self._apply(text, self._pair_spans(text, in_json=False))
            sealed = whole
        if nl < 0:
            return sealed
        rest = text[nl:]
        sealed_rest = self._apply(rest, self._pair_spans(rest, in_json=False))
        if sealed is first and sealed_rest is rest:
            return text
        return sealed + sealed_rest

    def _pair_spans(self, data: bytes, *, in_json: bool) -> list[Span] | None:
        """Where the values of `name=value` pairs are; None (in a JSON line) when
        one holds a backslash (replacing it could cut a JSON escape in two) or is
        quoted (its marker would be, breaking the string it is in)."""
        spans: list[Span] = []
        for key in self._pair_keys:
            pos = data.find(key)
            while pos >= 0:
                start = pos + len(key)
                if pos == 0 or not _KEY_PART[data[pos - 1]]:
                    m = _PAIR_VALUE.match(data, start)
                    if m is not None:
                        if in_json and (b"\\" in m.group() or m.group()[:1] == b"'"):
                            return None  # quotes of its own to write: parse the line
                        spans.append((start, m.end(), None))
                pos = data.find(key, start)
        return spans

    def _json_spans(self, first: bytes) -> list[Span] | None:
        """Where the values of configured keys are in a JSON line (nested ones
        too: hidden, though not fields), and its pairs'; None for the whole
        treatment. No parse: a quote after an even run of backslashes is a
        real one, and a real quote before `name"` and a colon opens a key."""
        spans = self._pair_spans(first, in_json=True)
        if spans is None:
            return None
        for quoted in self._json_keys:
            at = first.find(quoted)
            while at >= 0:
                after = at + len(quoted)
                if _escaped(first, at):
                    at = first.find(quoted, after)
                    continue
                pos = _skip_space(first, after)
                if first[pos : pos + 1] == b":":
                    pos = _skip_space(first, pos + 1)
                    head = first[pos : pos + 1]
                    if head == b'"':
                        m = _JSON_STRING.match(first, pos)
                        if m is None:
                            return None
                        text = _json_text(m.group())
                        if text is None:
                            return None
                        spans.append((pos, m.end(), text))
                    elif head in (b"{", b"["):
                        return None  # an object or array: parse it
                    else:
                        m = _JSON_SCALAR.match(first, pos)
                        if m is None:
                            return None
                        if m.group() != b"null":  # nothing to hide
                            # The query compares str(value) (query/model.py _field_test).
                            spans.append((pos, m.end(), str(orjson.loads(m.group()))))
                at = first.find(quoted, after)
        return spans

    def _apply(self, data: bytes, spans: list[Span] | None) -> bytes:
        """`data` with each span's value replaced by its marker (`data` if none)."""
        if not spans:
            return data
        if len(spans) > 1:
            spans.sort()
        cipher = self.cipher
        parts: list[bytes] = []
        last = 0
        for start, end, value in spans:
            if start < last:
                continue  # inside the value before it (`user_id=email=x`): the parser's view
            raw = data[start:end]
            if value is None:  # a pair's value
                if raw.startswith(MARK) and MARKER.fullmatch(raw):
                    continue  # sealed already (a forwarded copy)
                marker = cipher.seal_pair(raw)
                if raw[:1] in b"\"'":
                    marker = b'"' + marker + b'"'
            else:  # a JSON value
                if value.startswith(SEALED_PREFIX) and _MARKER_STR.fullmatch(value):
                    continue
                marker = b'"' + cipher.seal_json(raw, value) + b'"'
            parts += (data[last:start], marker)
            last = end
            self.sealed += 1
        if not parts:
            return data
        parts.append(data[last:])
        return b"".join(parts)

    def _seal_json_whole(self, first: bytes) -> bytes | None:
        """The JSON line parsed, its top-level configured values and the pairs in
        its strings sealed, written again; None if it is no JSON object."""
        try:
            obj = orjson.loads(first)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(obj, dict):
            return None
        names = self._names_set
        for key, value in obj.items():
            if key in names:
                if value is None or (isinstance(value, str) and _MARKER_STR.fullmatch(value)):
                    continue
                shown = value if isinstance(value, str) else str(value)
                obj[key] = self.cipher.seal_json(orjson.dumps(value), shown).decode()
                self.sealed += 1
            elif isinstance(value, str) and "=" in value:
                data = value.encode()
                sealed = self._apply(data, self._pair_spans(data, in_json=False))
                if sealed is not data:
                    obj[key] = sealed.decode()
        try:
            return orjson.dumps(obj)
        except orjson.JSONEncodeError:
            self.unsealed += 1
            return None

    # ---- reading back ----------------------------------------------------------------
    def reveal_text(self, text: bytes) -> bytes:
        """`text` with every marker these keys open replaced by what it sealed."""
        return reveal_text(self.cipher, text)


def reveal_text(cipher: FieldCipher, text: bytes) -> bytes:
    """`text` with every marker `cipher` opens replaced by what it sealed; markers
    it cannot open (another key, forged) stay as they are."""
    if MARK not in text:
        return text
    if text[:1] == b"{":
        nl = text.find(b"\n")
        first = text if nl < 0 else text[:nl]
        revealed = _reveal_json(cipher, first)
        if revealed is not None:
            return revealed if nl < 0 else revealed + _reveal_pairs(cipher, text[nl:])
    return _reveal_pairs(cipher, text)


def _reveal_pairs(cipher: FieldCipher, data: bytes) -> bytes:
    if MARK not in data:
        return data

    def opened(m: re.Match[bytes]) -> bytes:
        span = cipher.open(m.group(1) or m.group(2))
        return m.group(0) if span is None else span

    return _SEALED.sub(opened, data)


def _reveal_json(cipher: FieldCipher, first: bytes) -> bytes | None:
    """A JSON line with its markers opened at any depth, written again; None if
    it is no JSON object."""
    try:
        obj: Any = orjson.loads(first)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    stack: list[Any] = [obj]
    while stack:  # no recursion: JSON may nest deeper than Python's stack
        node = stack.pop()
        keys = node.keys() if isinstance(node, dict) else range(len(node))
        for key in list(keys):
            value = node[key]
            if isinstance(value, dict | list):
                stack.append(value)
            elif isinstance(value, str) and SEALED_PREFIX in value:
                node[key] = _reveal_string(cipher, value)
    try:
        return orjson.dumps(obj)
    except orjson.JSONEncodeError:
        return None


def _reveal_string(cipher: FieldCipher, value: str) -> Any:
    """A JSON string value with its markers opened: a whole marker gives back the
    JSON value it sealed, markers of pairs in it their text."""
    whole = _MARKER_STR.fullmatch(value)
    if whole is not None:
        span = cipher.open(whole.group(1).encode())
        if span is not None:
            try:
                return orjson.loads(span)
            except orjson.JSONDecodeError:
                pass  # a pair's text (`user_id=` sealed it): opened below
    return _reveal_pairs(cipher, value.encode()).decode("utf-8", "replace")
