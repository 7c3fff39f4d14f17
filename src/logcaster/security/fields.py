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
import contextlib
import hmac
import re
from collections.abc import Sequence
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

    Sealing caches value -> marker (bounded): equal values get the same
    marker, which tells no more than their equal indexes do already, and
    saves a Fernet encryption (~7 us) per repeated user id or address.
    """

    def __init__(self, keys: FieldKeys) -> None:
        self.keys = keys
        self._cache: dict[tuple[str, bytes], bytes] = {}

    def index(self, value: str) -> bytes:
        """The marker prefix every sealing of `value` starts with."""
        mac = hmac.digest(self.keys.hmac_key, value.encode(), "sha256")[:INDEX_BYTES]
        return MARK + b64(mac) + b":"

    def seal(self, value: str, span: bytes) -> bytes:
        """The marker for `value` (what queries compare), replacing text `span`."""
        key = (value, span)
        marker = self._cache.get(key)
        if marker is None:
            # A Fernet token is base64url already: only its padding goes.
            marker = self.index(value) + self.keys.fernet.encrypt(span).rstrip(b"=")
            if len(span) <= CACHE_SPAN_BYTES:
                if len(self._cache) >= CACHE_VALUES:
                    self._cache.clear()
                self._cache[key] = marker
        return marker

    def open(self, token: bytes) -> bytes | None:
        """The text a marker's token replaced, or None (another key, forged, damaged)."""
        try:
            return self.keys.fernet.decrypt(token + b"=" * (-len(token) % 4))
        except (InvalidToken, ValueError):
            return None


class FieldEncryptor:
    """The `Rewriter` (pipeline/pipeline.py) that seals configured fields."""

    def __init__(self, names: Sequence[str], keys: FieldKeys) -> None:
        self.names = tuple(names)
        self._names_set = frozenset(names)
        self._names_b = tuple(n.encode() for n in names)
        self.cipher = FieldCipher(keys)
        alternation = b"|".join(re.escape(n) for n in self._names_b)
        # The parser's logfmt pair (parsing/parse.py _LOGFMT), for these names only.
        # ASCII \w before the name: a non-ASCII letter there makes the parser skip
        # the pair, and sealing it anyway hides more, never less.
        self._pairs = re.compile(
            rb"(?<![\w.-])(" + alternation + rb""")=("(?:[^"\\]|\\.)*"|'[^']*'|[^\s,;"']+)"""
        )
        self._probe = re.compile(alternation)
        self.sealed = 0  # values sealed, all time
        self.unsealed = 0  # JSON lines orjson could not write back

    def use_keys(self, keys: FieldKeys) -> None:
        """Seal with new keys from now on (SIGHUP after `logcaster keys rotate`)."""
        self.cipher = FieldCipher(keys)

    def rewrite(self, texts: list[bytes]) -> list[bytes]:
        probe = self._probe.search
        out: list[bytes] | None = None
        for i, text in enumerate(texts):
            if probe(text) is None:
                continue
            sealed = self.seal_text(text)
            if sealed is not text:
                if out is None:
                    out = list(texts)
                out[i] = sealed
        return texts if out is None else out

    def readings(self, out: Readings) -> None:
        out.add(FIELDS_ENCRYPTED, self.sealed)
        out.add(FIELDS_UNSEALED, self.unsealed)

    # ---- sealing -------------------------------------------------------------------
    def seal_text(self, text: bytes) -> bytes:
        """`text` with every configured field's value sealed (`text` itself if none)."""
        if text[:1] == b"{":
            nl = text.find(b"\n")
            first = text if nl < 0 else text[:nl]
            sealed_first = self._seal_json(first)
            if sealed_first is not None:
                if nl < 0:
                    return sealed_first
                return sealed_first + self._seal_pairs(text[nl:])
        return self._seal_pairs(text)

    def _seal_pairs(self, data: bytes) -> bytes:
        if self._probe.search(data) is None:
            return data
        return self._pairs.sub(self._seal_pair, data)

    def _seal_pair(self, m: re.Match[bytes]) -> bytes:
        raw = m.group(2)
        if MARKER.fullmatch(raw):
            return m.group(0)
        head = raw[:1]
        if head == b'"' or head == b"'":
            value = raw[1:-1].decode("utf-8", "replace")
            if head == b'"' and "\\" in value:
                value = _ESCAPE.sub(r"\1", value)  # as the parser unescapes it
            sealed = b'"' + self.cipher.seal(value, raw) + b'"'
        else:
            sealed = self.cipher.seal(raw.decode("utf-8", "replace"), raw)
        self.sealed += 1
        return m.group(1) + b"=" + sealed

    def _seal_json(self, first: bytes) -> bytes | None:
        """The JSON line sealed, or None if it is no JSON object (then it is text)."""
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
                # The query compares str(value) for a number (query/model.py _field_test).
                shown = value if isinstance(value, str) else str(value)
                obj[key] = self.cipher.seal(shown, orjson.dumps(value)).decode()
                self.sealed += 1
            elif isinstance(value, str) and "=" in value:
                data = value.encode()
                sealed = self._seal_pairs(data)
                if sealed is not data:
                    obj[key] = sealed.decode()
        try:
            return orjson.dumps(obj)
        except orjson.JSONEncodeError:
            self.unsealed += 1
            return self._seal_pairs(first)

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
    try:
        obj: Any = orjson.loads(first)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    for key, value in obj.items():
        if not isinstance(value, str) or SEALED_PREFIX not in value:
            continue
        whole = _MARKER_STR.fullmatch(value)
        if whole is not None:
            span = cipher.open(whole.group(1).encode())
            if span is not None:
                # A span that is no JSON value was not sealed here: leave the marker.
                with contextlib.suppress(orjson.JSONDecodeError):
                    obj[key] = orjson.loads(span)
        else:
            obj[key] = _reveal_pairs(cipher, value.encode()).decode("utf-8", "replace")
    try:
        return orjson.dumps(obj)
    except orjson.JSONEncodeError:
        return None
