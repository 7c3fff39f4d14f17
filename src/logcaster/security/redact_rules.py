"""What redaction matches: the built-in rules, the Luhn check, operators' rules.

Each rule has two halves:

- prefilters, for Hyperscan (security/redact.py runs every rule's in one pass
  over a whole batch). Each is a superset of what its rule rewrites, so a text
  no prefilter flags is one no rule would change. They only find candidates,
  and stay simple so that pass stays fast.
- the rewrite: Python `re` for the built-ins (they need look-behind), RE2 for
  operators' rules (linear time on any input), run only on flagged texts.

A secret becomes a marker (`[REDACTED:card]` by default) that holds no quote,
backslash or white space; a key is kept (`password=[REDACTED:password]`), and a
value that was a JSON number becomes a JSON string, so a JSON line stays JSON.
This module imports nothing of ours: the config check and the rewriter share
one compile.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import re2

BUILTINS = ("card", "password", "bearer", "aws_key", "email")
DEFAULT_BUILTINS = ("card", "password", "bearer", "aws_key")
MAX_RULES = 32
MAX_PATTERN_BYTES = 1024
MAX_REPLACEMENT_BYTES = 256
MAX_MARKER_BYTES = 64
MAX_MEM = 1 << 20  # RE2's program and DFA budget per operator pattern
NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
# A marker's characters: printable, no white space, no quote, backslash or the
# characters an unquoted value stops at (so a marker is one value, seen again).
_MARKER_CHARS = re.compile(r"[!#-%(-+\--:<-\[\]-~]+")

Count = Callable[[str], None]  # count one replacement of the named rule

# ------------------------------------------------------------------- the prefilters

_KEYWORDS = rb"(?:password|passwd|secret|token|authorization|api[_-]?key)"
_AWS_KEYS = rb"(?:secret_?access_?key|aws_?secret(?:_?access)?(?:_?key)?)"
# rule -> its Hyperscan patterns; (?i) where the rule ignores case.
PREFILTERS: dict[str, tuple[bytes, ...]] = {
    # A superset of _CARD's matches: word boundaries where it wants no letter,
    # digit or `_` (UUIDs and hex ids, frequent in logs, rarely reach the rewrite).
    "card": (rb"\b[2-6](?:[ -]?[0-9]){12}",),
    "password": (
        rb"(?i)" + _KEYWORDS + rb"[\"']?\s*[:=]",
        rb"(?i)--" + _KEYWORDS + rb"[ \t]",  # a command line's `--password secret`
        rb"//[^\s:/@]+:[^\s@/]+@",  # a URL's `user:password@`
    ),
    "bearer": (rb"(?i)authorization\"?[ \t]*[:=]", rb"(?i)bearer[ \t]"),
    "aws_key": (rb"A[KS]IA[A-Z0-9]{16}", rb"(?i)" + _AWS_KEYS + rb"[\"']?\s*[:=]"),
    "email": (rb"[A-Za-z0-9._%+-]@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2}",),
}

# ------------------------------------------------------------------- markers


class Marks:
    """The marker format (`redact.marker`), with `{rule}` standing for the rule."""

    def __init__(self, fmt: str) -> None:
        check_marker(fmt)
        self.fmt = fmt
        any_rule = re.escape(fmt.encode()).replace(re.escape(b"{rule}"), rb"[A-Za-z0-9_-]+")
        self._any = re.compile(any_rule)

    def of(self, rule: str) -> bytes:
        return self.fmt.replace("{rule}", rule).encode()

    def holds(self, value: bytes) -> bool:
        """`value` is a marker already (rewritten by an earlier rule)."""
        return self._any.fullmatch(value) is not None

    def within(self, value: bytes) -> bool:
        """`value` holds a marker (`Bearer [REDACTED:bearer]`: an earlier rule's)."""
        return self._any.search(value) is not None


def check_marker(fmt: str) -> None:
    """ValueError unless `fmt` is a marker format that keeps JSON and key=value intact."""
    if not fmt or len(fmt) > MAX_MARKER_BYTES:
        raise ValueError(f"1 to {MAX_MARKER_BYTES} characters")
    if not _MARKER_CHARS.fullmatch(fmt.replace("{rule}", "")) and fmt != "{rule}":
        raise ValueError(
            "printable ASCII only, without white space, quotes, backslash, ',', ';' or '&'"
        )
    if "{" in fmt.replace("{rule}", "") or "}" in fmt.replace("{rule}", ""):
        raise ValueError("the only placeholder is {rule}")


# ------------------------------------------------------------------- the built-ins

_SCHEMES = rb"(?:[Bb]earer|BEARER|[Bb]asic|BASIC|[Dd]igest|[Tt]oken|[Nn]egotiate|NTLM)"
_CRED = rb"[A-Za-z0-9._~+/=-]+"
_JSON_STR = rb'"(?:[^"\\\n]|\\.)+"'  # a JSON string of one character or more
_JSON_NUM = rb"-?[0-9][0-9.eE+-]*"
# An unquoted value stops at white space, quotes, a backslash, `,`, `;` and `&`.
_BARE = rb"[^\s\"'\\,;&]+"
# A value in escaped quotes, inside a JSON string: `"msg": "password=\"x\""`.
_ESCAPED_QUOTED = rb'\\"[^"\\\n]*\\"'
# `--password secret` on a logged command line, and a URL's `//user:password@`.
_FLAG = re.compile(rb"(--(?i:" + _KEYWORDS + rb")[ \t]+)(" + _BARE + b")")
_URL_CRED = re.compile(rb"(//[^\s:/@]+:)([^\s@/]+)(?=@)")


def _json_pair(keys: bytes) -> re.Pattern[bytes]:
    """`"<key>": "value"` or a number (the value becomes a JSON string)."""
    return re.compile(
        rb'("[A-Za-z0-9_.-]*(?i:'
        + keys
        + rb')"[ \t]*:[ \t]*)('
        + _JSON_STR
        + b"|"
        + _JSON_NUM
        + b")"
    )


def _key_value(keys: bytes) -> re.Pattern[bytes]:
    """`key=value`, `key: value`, `key="quoted value"`, a Python dict's
    `'key': 'value'` (JSON's `"key":` is `_json_pair`'s); a scheme before the value
    (`Authorization: Basic xyz`) is kept. The match starts at the key word: what
    comes before it (`client_` of `client_secret`) stays as it is anyway, and a
    pattern that starts with a word is one `re` finds fast."""
    return re.compile(
        rb"((?i:"
        + keys
        + rb")'?[ \t]*[:=][ \t]*(?:"
        + _SCHEMES
        + rb"[ \t]+)?)"
        + rb"(\"(?:[^\"\\\n]|\\.)+\"|'[^'\n]+'|"
        + _ESCAPED_QUOTED
        + b"|"
        + _BARE
        + b")"
    )


_AUTH_HEADER = re.compile(
    rb"((?i:authorization)\"?[ \t]*[:=][ \t]*\"?" + _SCHEMES + rb"[ \t]+)(" + _CRED + b")"
)
# A `Bearer <token>` anywhere: 8 or more token characters, not all lower-case
# letters (`Bearer credentials were refused` is prose).
# (Patterns start with a character, not a look-behind: `re` then skips to where
# that character is; the look-behind comes after it.)
_BEARER = re.compile(
    rb"((?:Bearer|BEARER|bearer)(?<![A-Za-z0-9].{6})[ \t]+)(?![a-z]+(?![A-Za-z0-9._~+/=-]))"
    rb"([A-Za-z0-9._~+/-]{8,}=*)",
    re.S,
)
_AWS_ID = re.compile(rb"()(A(?<![A-Za-z0-9]A)[KS]IA[A-Z0-9]{16})(?![A-Za-z0-9])")
# A card number stands alone: no letter, digit, `_` or `.` right before it (a
# fraction's digits), no letter, digit, `_` or `.digit` after it, and it is no
# part of a hyphenated token (`9d41fd56-6374-1293-4080-100f86d033d2`,
# a UUID, would otherwise lose digits that happen to pass Luhn).
# A leading `-` is taken along (a negative JSON number is replaced whole).
_CARD = re.compile(
    rb"(?:(?<![0-9A-Za-z_.-])-)?(?<![0-9A-Za-z_.])(?<![0-9A-Za-z]-)[2-6][0-9](?:[ -]?[0-9]){11,17}"
    rb"(?![0-9A-Za-z_])(?!-[0-9A-Za-z])(?!\.[0-9])"
)
_EMAIL = re.compile(
    rb"[A-Za-z0-9._%+-](?<![A-Za-z0-9._%+-].)[A-Za-z0-9._%+-]*@[A-Za-z0-9-]+"
    rb"(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9-])",
    re.S,
)
_DIGIT_GROUP = re.compile(rb"[0-9]+")
_JSON_STRING_ANY = re.compile(rb'"(?:[^"\\]|\\.)*"')


def luhn(digits: bytes) -> bool:
    """The Luhn check digit is right (`digits`: ASCII digits only). Sums by slices
    and a table, in C: it runs on every candidate number."""
    odd = digits[-1::-2]
    total = sum(odd) - 48 * len(odd) + sum(map(_DOUBLED.__getitem__, digits[-2::-2]))
    return total % 10 == 0


# An ASCII digit's byte -> the Luhn sum of the doubled digit.
_DOUBLED = tuple((2 * (b - 48)) - 9 * ((b - 48) > 4) if 48 <= b <= 57 else 0 for b in range(256))


def _is_card(digits: bytes) -> bool:
    return 13 <= len(digits) <= 19 and digits[0] in b"23456" and luhn(digits)


def card_span(run: bytes) -> tuple[int, int] | None:
    """Where a card number is in a run of digits with single spaces or dashes
    between them, or None: the whole run when it is one, else the longest run of
    whole digit groups that is (`order 2 4111 1111 1111 1111`). A card number has
    13 to 19 digits, starts with 2 to 6 (the card networks' ranges) and passes Luhn.
    """
    if _is_card(run.replace(b" ", b"").replace(b"-", b"")):
        return 0, len(run)
    groups = [m.span() for m in _DIGIT_GROUP.finditer(run)]
    best: tuple[int, int] | None = None
    most = 0
    for i, (start, _) in enumerate(groups):
        for j in range(len(groups) - 1, i - 1, -1):
            end = groups[j][1]
            digits = run[start:end].replace(b" ", b"").replace(b"-", b"")
            if len(digits) > most and _is_card(digits):
                best, most = (start, end), len(digits)
    return best


def _in_json_string(text: bytes, pos: int) -> bool:
    """Whether offset `pos` of a JSON line lies inside one of its strings."""
    for m in _JSON_STRING_ANY.finditer(text):
        if m.start() > pos:
            return False
        if pos < m.end():
            return True
    return False


Rewrite = Callable[[bytes, Marks, Count], bytes]


# A pattern, and the lower-case words one of which every match of it starts with
# (None: the pattern starts with a character `re` skips to fast by itself).
Finder = tuple[re.Pattern[bytes], tuple[bytes, ...] | None]
_QUOTED = (b'"',)  # a JSON pair: tried on a text with a quote only


def _pairs(name: str, *finders: Finder) -> Rewrite:
    """The rewrite of `(kept)(secret)` patterns: the secret becomes the marker (in
    its quotes; a JSON string where it was a JSON number); a marker stays."""

    def rewrite(text: bytes, marks: Marks, count: Count) -> bytes:
        marker = marks.of(name)

        def one(m: re.Match[bytes]) -> bytes:
            kept, value = m.group(1), m.group(2)
            quote = value[:1] if value[:1] in (b'"', b"'") else b""
            if marks.within(value):
                return m.group(0)
            count(name)
            if not quote and kept.startswith(b'"'):  # a JSON number
                quote = b'"'
            return kept + quote + marker + quote

        for pattern, words in finders:
            if words == _QUOTED:
                if b'"' in text:
                    text = pattern.sub(one, text)
            elif words is None:
                text = pattern.sub(one, text)
            else:
                text = _sub_at(pattern, text, _starts(text.lower(), words), one)
        return text

    return rewrite


def _starts(lowered: bytes, words: tuple[bytes, ...]) -> list[int]:
    """Where each of `words` occurs in `lowered`, ascending."""
    out: list[int] = []
    for word in words:
        i = lowered.find(word)
        while i >= 0:
            out.append(i)
            i = lowered.find(word, i + 1)
    out.sort()
    return out


def _sub_at(
    pattern: re.Pattern[bytes],
    text: bytes,
    starts: list[int],
    one: Callable[[re.Match[bytes]], bytes],
) -> bytes:
    """`pattern.sub(one, text)` for a pattern whose every match begins at one of
    `starts`: a match tried only there (`re` scanning a whole line for a pattern
    that begins with a case-insensitive word costs 5-10 µs; this, under 1)."""
    parts: list[bytes] = []
    pos = 0
    for start in starts:
        if start < pos:
            continue
        m = pattern.match(text, start)
        if m is None:
            continue
        parts += (text[pos:start], one(m))
        pos = m.end()
    if not parts:
        return text
    parts.append(text[pos:])
    return b"".join(parts)


def _card(text: bytes, marks: Marks, count: Count) -> bytes:
    marker = marks.of("card")
    json_line = text.lstrip()[:1] == b"{"  # not `[`: `[INFO] ...` is no JSON

    def one(m: re.Match[bytes]) -> bytes:
        whole = m.group(0)
        sign = whole[:1] == b"-"
        run = whole[1:] if sign else whole
        span = card_span(run)
        if span is None:
            return whole
        count("card")
        start, end = span
        mark = marker
        if json_line and not _in_json_string(text, m.start()):
            mark = b'"' + marker + b'"'  # it was a JSON number: its sign goes too
            if sign and start == 0:
                return mark + run[end:]
        return whole[: start + sign] + mark + run[end:]

    return _CARD.sub(one, text)


def _email(text: bytes, marks: Marks, count: Count) -> bytes:
    marker = marks.of("email")

    def one(m: re.Match[bytes]) -> bytes:
        count("email")
        return marker

    return _EMAIL.sub(one, text)


# In the order they run on a text: the more specific first (an Authorization
# header is `bearer`, not `password`; an AWS secret key is not a `password`).
_PW_WORDS = (b"passw", b"secret", b"token", b"authorization", b"api")
REWRITES: dict[str, Rewrite] = {
    "bearer": _pairs("bearer", (_AUTH_HEADER, (b"authorization",)), (_BEARER, (b"bearer",))),
    "aws_key": _pairs(
        "aws_key",
        (_json_pair(_AWS_KEYS), _QUOTED),
        (_key_value(_AWS_KEYS), (b"secret", b"aws")),
        (_AWS_ID, None),
    ),
    "password": _pairs(
        "password",
        (_json_pair(_KEYWORDS), _QUOTED),
        (_key_value(_KEYWORDS), _PW_WORDS),
        (_FLAG, (b"--",)),
        (_URL_CRED, (b"//",)),
    ),
    "card": _card,
    "email": _email,
}
assert set(REWRITES) == set(BUILTINS) == set(PREFILTERS)

# ------------------------------------------------------------------- operators' rules


@dataclass(frozen=True)
class OperatorRule:
    """`redact.rules.N`: an RE2 pattern and what replaces each match."""

    name: str
    pattern: str
    regex: re2._Regexp
    parts: tuple[bytes | int, ...]  # literal bytes and group numbers (`\1`)

    def rewrite(self, text: bytes, marks: Marks, count: Count) -> bytes:
        name, parts = self.name, self.parts

        def one(m: re2._Match) -> bytes:
            count(name)
            return b"".join(p if isinstance(p, bytes) else (m.group(p) or b"") for p in parts)

        out: bytes = self.regex.sub(one, text)
        return out


def compile_pattern(pattern: str) -> re2._Regexp:
    """An operator's RE2 pattern, compiled; ValueError says what is wrong."""
    if len(pattern.encode()) > MAX_PATTERN_BYTES:
        raise ValueError(f"longer than {MAX_PATTERN_BYTES} bytes")
    options = re2.Options()
    options.log_errors = False
    options.max_mem = MAX_MEM
    try:
        regex = re2.compile(pattern.encode(), options=options)
    except re2.error as exc:
        detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise ValueError(f"not a valid RE2 pattern: {detail}") from None
    if regex.search(b"") is not None or regex.search(b" ") is not None:
        raise ValueError("matches the empty string")
    return regex


def parse_replacement(replacement: str, groups: int) -> tuple[bytes | int, ...]:
    """Literal text with `\\1`..`\\9` for the pattern's groups (`\\0`: the whole
    match); ValueError for anything that could break a JSON line or names no group."""
    raw = replacement.encode()
    if len(raw) > MAX_REPLACEMENT_BYTES:
        raise ValueError(f"longer than {MAX_REPLACEMENT_BYTES} bytes")
    if re.search(rb'["\x00-\x1f\x7f]', raw):
        raise ValueError("no quotes or control characters (they would break JSON lines)")
    parts: list[bytes | int] = []
    for piece in re.split(rb"(\\.?)", raw):
        if not piece.startswith(b"\\"):
            if piece:
                parts.append(piece)
            continue
        ref = piece[1:]
        if not ref.isdigit():
            raise ValueError(r"a backslash only before a group number (\1 to \9)")
        if int(ref) > groups:
            raise ValueError(f"\\{int(ref)} names no group: the pattern has {groups}")
        parts.append(int(ref))
    return tuple(parts)


def operator_rule(name: str, pattern: str, replacement: str | None, marks: Marks) -> OperatorRule:
    """The compiled rule; ValueError("pattern: ...") or ("replacement: ...")."""
    try:
        regex = compile_pattern(pattern)
    except ValueError as exc:
        raise ValueError(f"pattern: {exc}") from None
    parts: tuple[bytes | int, ...] = (marks.of(name),)
    if replacement is not None:
        try:
            parts = parse_replacement(replacement, regex.groups)
        except ValueError as exc:
            raise ValueError(f"replacement: {exc}") from None
    return OperatorRule(name, pattern, regex, parts)
