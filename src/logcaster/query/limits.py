"""What one query's text tests may cost, checked before anything is compiled.

A regex is compiled several times per query (RE2 for bodies, RE2 over escaped
lines, a Hyperscan translation), and each engine's cost grows with the
pattern: RE2 with captures keeps a capture array per NFA thread, so 30,000
nested groups took 17 GB; Python's sre parser, used by the translation,
recurses once per group; RE2's worst-case search costs its program size times
the text. So every pattern is measured first, in linear time and without
recursion: its size in bytes, its group nesting depth, then RE2's compile
within `query.regex_max_mem` and its program size. Keywords are bounded in
length and number. Over a limit, the query is refused with an error naming
the limit.

`apply_limits` is the one gate: the parser passes every query it builds
through it (QUERY, FILTER, SEARCH, REGEX; `build_query` for front ends that
take key=value parameters), so a bad query is refused before it waits for a
query thread; and the planner, which every front end runs queries through,
applies it again to a `Query` built any other way.
"""

from __future__ import annotations

from dataclasses import replace

from logcaster.exceptions import QueryLimitError
from logcaster.options import QueryConfig
from logcaster.query.model import Query, compile_regex


def apply_limits(query: Query, config: QueryConfig) -> Query:
    """The query, checked (`check_query`), carrying the RE2 budget its compiles use."""
    query = replace(query, regex_max_mem=config.regex_max_mem)
    check_query(query, config)
    return query


def check_query(query: Query, config: QueryConfig) -> None:
    """Raise QueryLimitError if the query's keywords or regex pass a `query.` limit.

    A regex that is merely invalid raises QuerySyntaxError (from compile_regex).
    """
    if len(query.keywords) > config.max_keywords:
        raise QueryLimitError(
            f"{len(query.keywords)} keywords, over query.max_keywords={config.max_keywords}"
        )
    for word in query.keywords:
        size = len(word.encode())
        if size > config.max_keyword_bytes:
            raise QueryLimitError(
                f"a keyword of {size} bytes, over query.max_keyword_bytes="
                f"{config.max_keyword_bytes}"
            )
    if query.regex is not None:
        check_pattern(query.regex, config)


def check_pattern(pattern: str, config: QueryConfig) -> None:
    """Size, then nesting, then RE2's memory and program size: each check
    bounds the next one's cost."""
    size = len(pattern.encode())
    if size > config.max_pattern_bytes:
        raise QueryLimitError(
            f"regex of {size} bytes, over query.max_pattern_bytes={config.max_pattern_bytes}"
        )
    depth = pattern_depth(pattern)
    if depth > config.max_pattern_depth:
        raise QueryLimitError(
            f"regex nests groups {depth} deep, over query.max_pattern_depth="
            f"{config.max_pattern_depth}"
        )
    program = compile_regex(pattern, config.regex_max_mem).programsize  # or QueryLimitError
    if program > config.regex_max_program:
        # RE2 is linear in the text, but where its DFA gives up (a cache too
        # small for the pattern's states) the NFA costs program x text bytes:
        # 10,000 instructions took 1 s on one 64 KiB event, and one search
        # cannot be interrupted at the deadline.
        raise QueryLimitError(
            f"regex compiles to {program} RE2 instructions, over query.regex_max_program="
            f"{config.regex_max_program}"
        )


def pattern_depth(pattern: str) -> int:
    """The deepest nesting of groups in an RE2 pattern, read in one pass.

    Parentheses count unless escaped, inside a class `[...]` or quoted by
    `\\Q...\\E`. An unbalanced pattern is measured as far as it goes (RE2
    rejects it anyway).
    """
    depth = deepest = 0
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        c = pattern[i]
        if c == "\\":
            if pattern.startswith("\\Q", i):
                end = pattern.find("\\E", i + 2)
                i = n if end < 0 else end + 2
                continue
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
        elif c == "[":
            in_class = True
            # A `]` right after `[` or `[^` is a member, not the end.
            i += 1
            if pattern.startswith("^", i):
                i += 1
            if pattern.startswith("]", i):
                i += 1
            continue
        elif c == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif c == ")":
            depth = max(0, depth - 1)
        i += 1
    return deepest
