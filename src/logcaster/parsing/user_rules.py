"""Operators' own multi-line rules (`multiline.rules`), checked and compiled.

Like Fluent Bit's multiline parsers: a rule's `start` regex marks the first
line of an event, its `continue` regex the lines that belong to it. Patterns
are RE2 (linear time: a rule cannot stall ingest on a hostile line), matched
at the start of a line, on its bytes. This module imports nothing of ours, so
the config check and the framer share one compile.
"""

from __future__ import annotations

import re2

MAX_RULES = 32
MAX_PATTERN_BYTES = 4096
MAX_MEM = 1 << 20  # RE2's compiled program and DFA budget per pattern


def compile_pattern(pattern: str) -> re2._Regexp:
    """The compiled pattern, anchored at the line start; ValueError says what is wrong."""
    if not pattern:
        raise ValueError("empty pattern")
    if len(pattern.encode()) > MAX_PATTERN_BYTES:
        raise ValueError(f"longer than {MAX_PATTERN_BYTES} bytes")
    options = re2.Options()
    options.log_errors = False
    options.never_capture = True
    options.max_mem = MAX_MEM
    try:
        return re2.compile(pattern.encode(), options=options)
    except re2.error as exc:
        detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise ValueError(f"not a valid RE2 pattern: {detail}") from None


def scanner(patterns: list[str]) -> re2._Regexp:
    """One pattern finding, in a chunk, every line that any of `patterns` matches."""
    options = re2.Options()
    options.log_errors = False
    options.never_capture = True
    options.max_mem = MAX_MEM * max(1, len(patterns))
    joined = "|".join(f"(?:{p})" for p in patterns)
    return re2.compile(f"(?m)^(?:{joined})".encode(), options=options)
