"""What the store's text scan searches for: a query's keywords and regex, as patterns
over escaped payload lines.

Queries test event bodies; the store holds escaped lines (segments/blocks.py:
`\\` -> `\\\\`, newline -> `\\n`, CR -> `\\r`, a leading `#` -> `\\#`). This
module translates the query's side to the escaped side, for the Scanner
(store/scan.py) and the confirmation of its candidates (store/text_match.py):

- `escape_text`: a keyword as the escaped bytes it is stored as;
- `translate_regex`: an RE2 pattern as a Hyperscan expression that matches a
  *superset* of the lines (every candidate is confirmed), and the sets of
  literals one of which every match must contain;
- `escaped_re2`: an RE2 pattern over escaped valid-UTF-8 lines that gives
  exactly the body's answer, so a candidate is confirmed without decoding.

A pattern the translation cannot vouch for (flags, lookarounds, anything
unparsed, or too costly for Hyperscan to compile) raises `Unsupported`; the
Scanner then runs RE2 over every decoded line.
"""

from __future__ import annotations

import re
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # typeshed types the parser under its old names; importing those at run
    # time warns (deprecated since 3.11), so run time uses the re package's own.
    import sre_constants as sre_c
    import sre_parse
else:
    import re._constants as sre_c
    import re._parser as sre_parse

REPLACEMENT = "\ufffd"


def escape_text(text: bytes) -> bytes:
    """`text` escaped like a raw payload line's inner bytes (no leading-`#` rule)."""
    return text.replace(b"\\", b"\\\\").replace(b"\n", b"\\n").replace(b"\r", b"\\r")


class Unsupported(ValueError):
    """A regex the Hyperscan translator does not handle (the RE2 fallback does)."""


# ---- regex translation -------------------------------------------------------------
# The translation maps an RE2 pattern over event bodies to a Hyperscan pattern
# over escaped lines that matches at least every line the RE2 pattern matches
# (a superset: every candidate is confirmed by RE2 on the decoded body). Each
# body character class becomes the alternatives of its escaped encodings, so
# nothing (`.` included) can cross an escaped newline unless the pattern's own
# class holds a newline. The pattern is parsed with Python's sre parser; only
# constructs both engines read the same way are accepted.

# Pattern text the two parsers read differently: POSIX classes (`[[:alpha:]]`),
# RE2's `{,n}` (a literal there, {0,n} in Python).
_DIFFERENT_SYNTAX = ("[:", "{,")
_ASCII = 128
_NONASCII = rb"[\x80-\xff]{1,4}"  # any one non-ASCII code point, or invalid bytes (U+FFFD)
_CATEGORIES: dict[object, frozenset[int]] = {
    # RE2's Perl classes are ASCII-only; \s is [\t\n\f\r ], without \v: with it,
    # \S (everything else) would leave out a \v that RE2's \S matches.
    sre_c.CATEGORY_DIGIT: frozenset(b"0123456789"),
    sre_c.CATEGORY_WORD: frozenset(
        b"0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    ),
    sre_c.CATEGORY_SPACE: frozenset(b"\t\n\x0c\r "),
}
_NEGATED = {
    sre_c.CATEGORY_NOT_DIGIT: sre_c.CATEGORY_DIGIT,
    sre_c.CATEGORY_NOT_WORD: sre_c.CATEGORY_WORD,
    sre_c.CATEGORY_NOT_SPACE: sre_c.CATEGORY_SPACE,
}
_ALL_ASCII = frozenset(range(_ASCII))
_LETTERS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_FOLDS_NONASCII = frozenset(b"kKsS")


def _charset(ascii_set: frozenset[int], nonascii: bool, ci: bool = False) -> bytes:
    """Hyperscan alternatives for one body character from the set, as escaped bytes.

    ci: case-insensitive, as RE2's `(?i)`: both cases of ASCII letters, and any
    non-ASCII character for k and s (KELVIN SIGN and LONG S fold to them).
    """
    if ci:
        ascii_set = ascii_set | {ord(chr(c).swapcase()) for c in ascii_set if chr(c).isalpha()}
        nonascii = nonascii or bool(ascii_set & _FOLDS_NONASCII)
    alts: list[bytes] = []
    plain = sorted(ascii_set - {ord("\\"), ord("\n"), ord("\r")})
    if plain:
        alts.append(b"[" + b"".join(b"\\x%02x" % c for c in plain) + b"]")
    for char, esc in ((ord("\\"), rb"\x5c\x5c"), (10, rb"\x5cn"), (13, rb"\x5cr")):
        if char in ascii_set:
            alts.append(esc)
    if ord("#") in ascii_set:
        alts.append(rb"\x5c#")  # a body's leading '#' is stored as '\#'
    if nonascii:
        alts.append(_NONASCII)
    if not alts:
        raise Unsupported("an empty character class")
    return alts[0] if len(alts) == 1 else b"(?:" + b"|".join(alts) + b")"


def _char(c: int, ci: bool) -> bytes:
    if c < _ASCII:
        return _charset(frozenset((c,)), False, ci)
    if ci:
        return _charset(_LETTERS, True)  # a non-ASCII letter may fold to an ASCII one
    if chr(c) == REPLACEMENT:
        return _NONASCII  # invalid UTF-8 in a text decodes to U+FFFD
    return b"".join(b"\\x%02x" % b for b in chr(c).encode())


def _class(items: list[tuple[object, object]], ci: bool) -> bytes:
    members: set[int] = set()
    nonascii = False
    negate = False
    for op, av in items:
        if op is sre_c.NEGATE:
            negate = True
        elif op is sre_c.LITERAL:
            assert isinstance(av, int)
            if av < _ASCII:
                members.add(av)
            else:
                nonascii = True
        elif op is sre_c.RANGE:
            assert isinstance(av, tuple)
            a, b = av
            members.update(range(a, min(b, _ASCII - 1) + 1))
            nonascii = nonascii or b >= _ASCII
        elif op is sre_c.CATEGORY and av in _CATEGORIES:
            members |= _CATEGORIES[av]
        elif op is sre_c.CATEGORY and av in _NEGATED:
            members |= _ALL_ASCII - _CATEGORIES[_NEGATED[av]]
            nonascii = True
        else:
            raise Unsupported(f"class item {op}")
    if ci:
        # Fold before negating: (?i)[^k] excludes K too. A non-ASCII member may
        # fold to an ASCII letter: allow them all (only when not negating, where
        # excluding less is the safe side).
        members |= {ord(chr(c).swapcase()) for c in members if chr(c).isalpha()}
        if nonascii and not negate:
            members |= _LETTERS
    if negate:
        return _charset(_ALL_ASCII - frozenset(members), True)
    return _charset(frozenset(members), nonascii, ci)


def _items(
    items: sre_parse.SubPattern | list[tuple[object, object]],
) -> list[tuple[object, object]]:
    if isinstance(items, sre_parse.SubPattern):
        return list(items.data)
    return items


def _seq(items: sre_parse.SubPattern | list[tuple[object, object]], ci: bool) -> bytes:
    return b"".join(_node(op, av, ci) for op, av in _items(items))


def _scoped_ci(ci: bool, add_flags: int, del_flags: int) -> bool:
    if (add_flags | del_flags) & ~sre_c.SRE_FLAG_IGNORECASE:
        raise Unsupported("inline flags other than i")
    return (ci or bool(add_flags & sre_c.SRE_FLAG_IGNORECASE)) and not (
        del_flags & sre_c.SRE_FLAG_IGNORECASE
    )


def _node(op: object, av: object, ci: bool) -> bytes:
    if op is sre_c.LITERAL:
        assert isinstance(av, int)
        return _char(av, ci)
    if op is sre_c.NOT_LITERAL:
        assert isinstance(av, int)
        return _class([(sre_c.NEGATE, None), (sre_c.LITERAL, av)], ci)
    if op is sre_c.ANY:
        return _charset(_ALL_ASCII - {10}, True)
    if op is sre_c.IN:
        assert isinstance(av, list)
        return _class(av, ci)
    if op is sre_c.BRANCH:
        assert isinstance(av, tuple)
        return b"(?:" + b"|".join(_seq(alt, ci) for alt in av[1]) + b")"
    if op is sre_c.SUBPATTERN:
        assert isinstance(av, tuple)
        _group, add_flags, del_flags, sub = av
        return b"(?:" + _seq(sub, _scoped_ci(ci, add_flags, del_flags)) + b")"
    if op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT):
        # Lazy or greedy: the same lines match, and only lines are reported.
        assert isinstance(av, tuple)
        lo, hi, sub = av
        inner = b"(?:" + _seq(sub, ci) + b")"
        if hi is sre_c.MAXREPEAT:
            return inner + (b"*" if lo == 0 else b"+" if lo == 1 else b"{%d,}" % lo)
        return inner + b"{%d,%d}" % (lo, hi)
    if op is sre_c.AT:
        if av in (sre_c.AT_BEGINNING, sre_c.AT_BEGINNING_STRING):
            return b"^"  # body start = line start (HS_FLAG_MULTILINE)
        if av is sre_c.AT_END:
            # RE2's `$` is the body's end = the line's newline. Consumed, not
            # asserted: Hyperscan 0.9.1's multiline `$` misses some matches before
            # a buffer's final newline (`[Ba]$` on b"\nBBxxxx\nBBxx\xe2\x84\xaaB\n").
            return rb"\x0a"
        if av in (sre_c.AT_BOUNDARY, sre_c.AT_NON_BOUNDARY):
            # Word boundaries next to escapes are not the body's; dropping a
            # zero-width test only widens the superset.
            return b""
    raise Unsupported(f"{op}".lower())


def _required(
    items: sre_parse.SubPattern | list[tuple[object, object]], ci: bool
) -> list[list[str]]:
    """Sets of literals (as body text) one of which every match must contain.

    Case-insensitive parts give none (their bytes are not fixed).
    """
    sets: list[list[str]] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            sets.append(["".join(run)])
            run.clear()

    for op, av in _items(items):
        if op is sre_c.LITERAL and isinstance(av, int) and chr(av) != REPLACEMENT and not ci:
            run.append(chr(av))
            continue
        flush()
        if op is sre_c.SUBPATTERN and isinstance(av, tuple):
            sets += _required(av[3], _scoped_ci(ci, av[1], av[2]))
        elif op is sre_c.BRANCH and isinstance(av, tuple):
            union: list[str] = []
            for alt in av[1]:
                alt_sets = _required(alt, ci)
                if not alt_sets:
                    union = []
                    break
                union += max(alt_sets, key=lambda s: min(map(len, s)))
            if union:
                sets.append(sorted(set(union)))
        elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT) and isinstance(av, tuple) and av[0] >= 1:
            sets += _required(av[2], ci)
    flush()
    return sets


# Hyperscan's compile cannot be interrupted, and its time grows fast with
# repeats: nested repeats of alternatives about double it per level
# (`((a|b)+)+...` 25 deep: 1.3 s; 30 deep: over a minute), and a bounded repeat
# copies its body (`.{1000}`: 0.7 s, then "too large"). Past these bounds the
# translation is refused, and the query runs on the RE2 fallback, which checks
# the deadline as it scans.
_HS_MAX_REPEAT_NESTING = 6
_HS_MAX_POSITIONS = 2000  # weighted character alternatives, bounded repeats expanded


def _positions(
    items: sre_parse.SubPattern | list[tuple[object, object]], ci: bool, nesting: int, room: int
) -> int:
    """The alternatives the translation holds, counting each copy a repeat makes;
    raises Unsupported past `room` or past _HS_MAX_REPEAT_NESTING nested repeats."""
    total = 0
    for op, av in _items(items):
        if op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT):
            assert isinstance(av, tuple)
            lo, hi, sub = av
            if nesting >= _HS_MAX_REPEAT_NESTING:
                raise Unsupported("repeats nested too deep for Hyperscan")
            copies = max(lo if hi is sre_c.MAXREPEAT else hi, 1)
            total += copies * _positions(sub, ci, nesting + 1, (room - total) // copies + 1)
        elif op is sre_c.BRANCH:
            assert isinstance(av, tuple)
            for alt in av[1]:
                total += _positions(alt, ci, nesting, room - total)
        elif op is sre_c.SUBPATTERN:
            assert isinstance(av, tuple)
            total += _positions(av[3], _scoped_ci(ci, av[1], av[2]), nesting, room - total)
        elif op is not sre_c.AT:
            leaf = _node(op, av, ci)
            # Any non-ASCII character is itself a repeat ({1,4} bytes): the costly part.
            total += (leaf.count(b"|") + 1) * (4 if _NONASCII in leaf else 1)
        if total > room:
            raise Unsupported("too large for Hyperscan")
    return total


def translate_regex(pattern: str) -> tuple[bytes, list[list[str]]]:
    """(Hyperscan expression over escaped lines, required-literal sets) for an RE2 pattern.

    The expression matches every line whose body the pattern matches (maybe
    more); every literal set has a member in every match. Raises Unsupported.
    """
    for text in _DIFFERENT_SYNTAX:
        if text in pattern:
            raise Unsupported(f"{text!r} reads differently in RE2 and Python")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "possible nested set" and the like
            tree = sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise Unsupported(f"parse: {exc}") from None
    flags = tree.state.flags & ~sre_c.SRE_FLAG_UNICODE
    if flags & ~sre_c.SRE_FLAG_IGNORECASE:
        raise Unsupported("flags other than i")
    ci = bool(flags & sre_c.SRE_FLAG_IGNORECASE)
    if tree.getwidth()[0] == 0:
        # Hyperscan rejects or silently skips zero-length matches (`^$`, `a*`);
        # such a pattern has no required bytes to scan for anyway.
        raise Unsupported("can match the empty string")
    _positions(tree, ci, 0, _HS_MAX_POSITIONS)
    expr = _seq(tree, ci)
    required = [s for s in _required(tree, ci) if all(len(x.encode()) >= 2 for x in s)]
    return expr, required


# ---- exact RE2 over escaped lines ----------------------------------------------------
# Confirming a candidate by decoding it costs more than the RE2 search itself
# on long multi-line events (unescape ~10 us, search ~5 us on 1.8 KB). For the
# common subset (literals, `.`, ASCII classes, groups, repeats, `^`, `$`) an
# RE2 pattern over the escaped line gives exactly the body's answer: RE2 reads
# UTF-8, so a class matches one code point like on the body; each body
# character becomes the alternatives of its escaped forms; and the prefix makes
# every match start on an escape boundary (an even run of backslashes before
# it), so `refused` cannot match the `r` of a `\r`. Only valid UTF-8 lines use it
# (invalid bytes decode to U+FFFD groups the bytes cannot mirror).
_RE2_BOUNDARY = r"(?:^|[^\\])(?:\\\\)*"


def _re2_set(members: frozenset[int], negate: bool) -> str:
    """RE2 alternatives for one body character in (or, negated, outside) ASCII `members`."""
    special = {ord("\\"), 10, 13}
    units = ((ord("\\"), r"\\\\"), (10, r"\\n"), (13, r"\\r"), (ord("#"), r"\\#"))
    plain: list[int] = []
    if negate:
        excluded = "".join(f"\\x{c:02x}" for c in sorted(members | special))
        alts = [f"[^{excluded}]"]
        alts += [esc for c, esc in units if c not in members]
    else:
        plain = sorted(members - special)
        listed = "".join(f"\\x{c:02x}" for c in plain)
        alts = [f"[{listed}]"] if plain else []
        alts += [esc for c, esc in units if c in members]
    if not alts:
        raise Unsupported("an empty character class")
    if len(alts) == 1:
        # A lone byte stays a plain literal, so RE2 keeps its literal shortcuts.
        return f"\\x{plain[0]:02x}" if not negate and len(plain) == 1 else alts[0]
    return "(?:" + "|".join(alts) + ")"


def _re2_class(items: list[tuple[object, object]]) -> str:
    members: set[int] = set()
    negate = False
    for op, av in items:
        if op is sre_c.NEGATE:
            negate = True
        elif op is sre_c.LITERAL and isinstance(av, int) and av < _ASCII:
            members.add(av)
        elif op is sre_c.RANGE and isinstance(av, tuple) and av[1] < _ASCII:
            members.update(range(av[0], av[1] + 1))
        elif op is sre_c.CATEGORY and av in _CATEGORIES:
            members |= _CATEGORIES[av]
        elif op is sre_c.CATEGORY and av in _NEGATED and len(items) == 1:
            return _re2_set(_CATEGORIES[_NEGATED[av]], True)
        else:
            raise Unsupported("class with non-ASCII members")
    return _re2_set(frozenset(members), negate)


def _re2_seq(items: sre_parse.SubPattern | list[tuple[object, object]]) -> str:
    out: list[str] = []
    for op, av in _items(items):
        if op is sre_c.LITERAL and isinstance(av, int):
            out.append(_re2_set(frozenset((av,)), False) if av < _ASCII else f"\\x{{{av:x}}}")
        elif op is sre_c.NOT_LITERAL and isinstance(av, int) and av < _ASCII:
            out.append(_re2_set(frozenset((av,)), True))
        elif op is sre_c.ANY:
            out.append(_re2_set(frozenset((10,)), True))
        elif op is sre_c.IN and isinstance(av, list):
            out.append(_re2_class(av))
        elif op is sre_c.BRANCH and isinstance(av, tuple):
            out.append("(?:" + "|".join(_re2_seq(alt) for alt in av[1]) + ")")
        elif op is sre_c.SUBPATTERN and isinstance(av, tuple) and not (av[1] or av[2]):
            out.append("(?:" + _re2_seq(av[3]) + ")")
        elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT) and isinstance(av, tuple):
            lo, hi, sub = av
            top = "" if hi is sre_c.MAXREPEAT else str(hi)
            out.append(f"(?:{_re2_seq(sub)}){{{lo},{top}}}")
        elif op is sre_c.AT and av in (sre_c.AT_BEGINNING, sre_c.AT_BEGINNING_STRING):
            out.append("^")
        elif op is sre_c.AT and av is sre_c.AT_END:
            out.append("$")  # the line is searched without its newline: end of text
        else:
            raise Unsupported(f"{op}".lower())
    return "".join(out)


def escaped_re2(pattern: str) -> str:
    """An RE2 pattern over escaped valid-UTF-8 lines exactly equal to `pattern` on bodies."""
    for text in _DIFFERENT_SYNTAX:
        if text in pattern:
            raise Unsupported(f"{text!r} reads differently in RE2 and Python")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise Unsupported(f"parse: {exc}") from None
    if tree.state.flags & ~sre_c.SRE_FLAG_UNICODE:
        raise Unsupported("flags")
    return f"{_RE2_BOUNDARY}(?:{_re2_seq(tree)})"


def exact_on_plain(regex: str) -> bool:
    """Whether the store's translation of `regex` (store/patterns.py) matches a plain
    line (ASCII, no backslash: the stored line is the body) exactly when RE2 does.

    Conservative, on the pattern's text: word boundaries (dropped by the
    translation), inline flags (`(?i)` widens non-ASCII members to any letter),
    and a `$` before the pattern's end (the newline it consumes may join the
    next line) all need RE2's confirmation."""
    if "\\b" in regex or "\\B" in regex:
        return False
    if "(?" in regex.replace("(?:", ""):
        return False
    return "$" not in regex[:-1]
