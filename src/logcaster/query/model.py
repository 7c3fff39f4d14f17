"""The one query model every front end uses (SPEC §6), and its compiled matcher.

Keywords and `field=value` compare exactly (case-sensitive), like grep.
Regexes run on RE2, a linear-time engine: no pattern can backtrack forever.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import re2

from logcaster.event import Event
from logcaster.exceptions import QueryLimitError, QuerySyntaxError
from logcaster.options import REGEX_MAX_MEM

# Event attributes `field=value` can also name; anything else is looked up in `fields`.
ATTRIBUTES = ("host", "pod", "version", "source", "message")

# An encrypted field's stored value starts so (security/fields.py): a field=value
# whose value starts so compares as a prefix, the query for an encrypted field
# being the prefix every sealing of the value shares (its keyed HMAC).
SEALED_PREFIX = "enc:v1:"

# RE2's own default budget for one compiled pattern (program and DFA caches).
DEFAULT_REGEX_MAX_MEM = REGEX_MAX_MEM


@dataclass(frozen=True, slots=True)
class Query:
    keywords: tuple[str, ...] = ()
    operator: Literal["AND", "OR"] = "AND"
    regex: str | None = None
    levels: frozenset[str] = frozenset()
    services: frozenset[str] = frozenset()
    time_from: float | None = None
    time_to: float | None = None
    fields: tuple[tuple[str, str], ...] = ()
    limit: int = 100
    order: Literal["desc", "asc"] = "desc"
    # Where to look: memory, store or both (None: both when the store is on).
    source: Literal["memory", "store", "all"] | None = None
    max_count: int | None = None  # count matches exactly up to this (None: config)
    regex_max_mem: int = DEFAULT_REGEX_MAX_MEM  # RE2's budget per compile (query.regex_max_mem)
    decrypt: bool = False  # show encrypted fields in clear (security/reveal.py decides)

    def matcher(self, *, text_tests: bool = True) -> Callable[[Event], bool]:
        """A function telling whether an event matches; cheap tests run first.

        text_tests=False leaves out the keyword and regex tests, for events that
        passed them on their raw text already (engine.memory_events).
        """
        tests: list[Callable[[Event], bool]] = []
        if self.levels:
            levels = self.levels
            tests.append(lambda ev: ev.level in levels)
        if self.services:
            services = self.services
            tests.append(lambda ev: ev.service in services)
        if self.time_from is not None:
            lo = self.time_from
            tests.append(lambda ev: ev.ts >= lo)
        if self.time_to is not None:
            hi = self.time_to
            tests.append(lambda ev: ev.ts <= hi)
        for name, value in self.fields:
            tests.append(_field_test(name, value))
        if self.keywords and text_tests:
            words = self.keywords
            if self.operator == "AND":
                tests.append(lambda ev: all(w in ev.body for w in words))
            else:
                tests.append(lambda ev: any(w in ev.body for w in words))
        if self.regex is not None and text_tests:
            search = compile_regex(self.regex, self.regex_max_mem).search
            tests.append(lambda ev: search(ev.body) is not None)
        if not tests:
            return lambda ev: True
        if len(tests) == 1:
            return tests[0]
        return lambda ev: all(test(ev) for test in tests)


def _field_test(name: str, value: str) -> Callable[[Event], bool]:
    if value.startswith(SEALED_PREFIX):

        def sealed(ev: Event) -> bool:
            have = ev.fields.get(name)
            return isinstance(have, str) and have.startswith(value)

        return sealed
    if name in ATTRIBUTES:
        return lambda ev: getattr(ev, name) == value

    def test(ev: Event) -> bool:
        have = ev.fields.get(name)
        if have is None:
            return False
        return have == value or str(have) == value

    return test


@functools.lru_cache(maxsize=8)
def compile_regex(pattern: str, max_mem: int = DEFAULT_REGEX_MAX_MEM) -> re2._Regexp:
    """RE2 without captures, within `max_mem` bytes (query/limits.py checks first).

    Cached: the limits check, the memory matcher and the store's text tests of
    one query ask for the same pattern (a compiled RE2 is safe to share between
    threads; a failed compile is not cached). A small cache: each entry may hold
    a DFA of up to `max_mem`.

    Every caller only asks whether a text matches. With captures, RE2's NFA
    keeps a capture array per thread: memory quadratic in the groups.
    """
    options = re2.Options()
    options.log_errors = False  # a bad pattern is reported to the client, not on stderr
    options.never_capture = True
    options.max_mem = max_mem
    try:
        return re2.compile(pattern, options=options)
    except re2.error as exc:
        detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        if str(detail).startswith("pattern too large"):
            raise QueryLimitError(
                f"regex needs more memory than query.regex_max_mem={max_mem} bytes"
            ) from None
        raise QuerySyntaxError(f"bad regex: {detail}") from None
