"""Exact text tests of one event: a query's keywords and regex, as Query.matcher has them.

A keyword is a case-sensitive substring of the event body, a regex an RE2
search over the body, `body = text.decode("utf-8", "replace")` (query/model.py).
`TextTest` runs these tests on one event's raw text or decoded body: the memory
buffer's queries use it (query/planner.py), and the Scanner (store/scan.py)
confirms with it each candidate line it cannot confirm on the escaped bytes
alone, after `stored_line_text` has turned the stored line back into the event's text.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate
from typing import AnyStr, Literal

import numpy as np

from logcaster.parsing.line_shapes import offsets_of
from logcaster.query.model import DEFAULT_REGEX_MAX_MEM, compile_regex
from logcaster.segments.blocks import unescape_line
from logcaster.store.word_finder import word_finder


def stored_line_text(line: bytes) -> bytes:
    if b"\\" not in line:
        return line
    if b"\\\\" not in line and b"\\r" not in line and not line.startswith(b"\\#"):
        # Only `\n` escapes (a multi-line event, the common case): one C-level
        # replace instead of blocks._unescape_line's split (13 us -> 1 us on a
        # 1.8 KB trace event).
        return line.replace(b"\\n", b"\n")
    return unescape_line(line)


def valid_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


class TextTest:
    """A query's keyword/regex tests on one event's text (raw bytes or decoded body),
    with Query.matcher's semantics; no Hyperscan database (see Scanner)."""

    def __init__(
        self,
        keywords: Sequence[str] = (),
        operator: Literal["AND", "OR"] = "AND",
        regex: str | None = None,
        *,
        max_mem: int = DEFAULT_REGEX_MAX_MEM,
    ) -> None:
        if operator not in ("AND", "OR"):
            raise ValueError(f"operator must be AND or OR, not {operator!r}")
        self.keywords = tuple(keywords)
        self.operator = operator
        self.regex = regex
        self._search = compile_regex(regex, max_mem).search if regex is not None else None
        words = self.keywords
        # "" is in every body: it drops out of an AND and makes an OR always true.
        if operator == "AND":
            words = tuple(w for w in words if w)
        elif "" in words:
            words = ()
        self._words = words
        self._words_b = tuple(w.encode() for w in words)
        self._or = operator == "OR" and len(words) > 0
        # The words that find candidates in bulk: none when a word holds U+FFFD
        # (in the decoded body it can match a replaced invalid byte, which the raw
        # bytes do not hold); for AND the longest word alone, likely the rarest.
        bulk = () if any("\ufffd" in w for w in words) else self._words_b
        self._bulk = bulk if self._or else tuple(sorted(bulk, key=len)[-1:])
        self._bulk_escape_free = not any(b"\\" in w or b"\r" in w or b"\n" in w for w in bulk)

    def matches_text(self, text: bytes) -> bool:
        """The query's text tests on one event's raw text (the memory buffer's form)."""
        if not text.isascii():
            try:
                text.decode()
            except UnicodeDecodeError:
                return self.matches_body(text.decode("utf-8", "replace"))
        return self._passes(text, self._words_b)

    def candidates(self, texts: Sequence[bytes], start: int, stop: int) -> list[int] | None:
        """The indexes in [start, stop) of the texts that may pass `matches_text`, in
        order, or None when no keyword can rule a text out (regex only, an OR with
        "", a word with U+FFFD).

        One Hyperscan scan of the texts joined (store/word_finder.py), instead of
        a call per text: each hit names the text it starts in. A hit across a
        joint only adds a candidate; every text that passes holds the word within
        its own bytes, so it is among them. The texts' ends are summed only when
        a word is found (a poll for a rare word finds none in most batches). More
        hits than texts, or words Hyperscan refuses: None, every text is tested.
        """
        if not self._bulk or stop <= start:
            return None
        finder = word_finder(self._bulk)
        if finder is None:
            return None
        part = texts[start:stop]
        hits = finder.starts(b"".join(part), len(part))
        if not hits:
            return hits
        ends = list(accumulate(map(len, part)))  # one past each text
        return [start + k for k in sorted({bisect_right(ends, at) for at in hits})]

    def payload_candidates(
        self, payload: bytes, count: int, start: int, stop: int
    ) -> list[int] | None:
        """`candidates` for a batch held as a raw payload (pipeline/batch.py,
        `Escaped`: `count` escaped lines), searched as it is, no text decoded.
        Escaping keeps every word without a backslash, CR or newline (a "#" at a
        text's start gains a backslash before it), so every text holding one
        holds it on its line; an escape can only add a candidate. None where
        `candidates` says None, or a word has one of those bytes."""
        if not self._bulk or stop <= start or not self._bulk_escape_free:
            return None
        finder = word_finder(self._bulk)
        if finder is None:
            return None
        hits = finder.starts(payload, count)
        if not hits:
            return hits
        newlines = offsets_of(payload, 10, len(payload))
        lines = np.unique(np.searchsorted(newlines, np.array(hits, np.int64)))
        kept: list[int] = lines[(lines >= start) & (lines < stop)].tolist()
        return kept

    def matches_body(self, body: str) -> bool:
        """The query's text tests on one decoded body (Query.matcher's semantics)."""
        return self._passes(body, self._words)

    def _passes(self, text: AnyStr, words: tuple[AnyStr, ...]) -> bool:
        """Keywords (AND/OR) then the regex, on bytes or str alike."""
        if words:
            found = (w in text for w in words)
            if not (any(found) if self._or else all(found)):
                return False
        return self._search is None or self._search(text) is not None
