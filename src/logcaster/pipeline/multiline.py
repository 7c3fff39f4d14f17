"""Multi-line grouping rules (SPEC §3), applied to whole chunks at C speed.

A line *continues* the event before it when it starts like a stack-trace or
detail line, or when the event before it is a header whose message is empty
(the seed-002 simulator puts the message on the next line). Both rules are
found with one regex scan over the chunk, so a chunk without multi-line
content costs two failed scans and no per-line Python work.
"""

from __future__ import annotations

import re

# One scan over the chunk finds both rules. It matches the "\n" in front of
# a line that continues the event before it:
#  - lines starting with "[", "{", "<" or a digit are headers and fail at
#    their first byte; otherwise
#  - the next line starts like a stack-trace or detail line, or
#  - the line before ends in ":" or " " (group 1), a candidate for a header
#    with an empty message, confirmed by _OPEN_HEADER.
_JOIN = re.compile(
    rb"\n(?![\[{<0-9])(?:"
    rb"(?="
    rb"[ \t]"
    rb"|at "
    rb"|Caused by:"
    rb"|\.\.\. \d+ (?:more|common frames omitted)"
    rb"|Traceback \(most recent call last\):"
    rb"|File \""
    rb"|Details:"
    rb"|Recovery Action:"
    rb"|Thread:"
    rb"|Request ID:"
    # pkg.SomeException: / pkg.SomeError (Java, dotted) and ValueError: (Python, bare)
    rb"|(?:[A-Za-z_$][\w$]*\.)+[A-Za-z_$][\w$]*(?:Exception|Error|Throwable|Fault)(?::|$)"
    rb"|[A-Z][A-Za-z]*(?:Error|Exception|Interrupt|Exit)(?::|$)"
    rb")"
    rb"|(?<=[: ]\n)()"
    rb")",
    re.M,
)

_OPEN_HEADER = re.compile(
    rb"(?:\[[A-Za-z]+\] \d{4}-\d\d-\d\d[ T][\d:.,]+ [\w.-]+/\S+(?: pod/\S+)?:"
    rb"|[A-Za-z]+: [\w.-]+/\S+ pod/\S+"
    rb") *$"
)


def join_points(body: bytes) -> list[int]:
    """Indexes k of the lines of `body` (split on b"\\n") that line k+1 joins."""
    positions: list[int] = []
    for m in _JOIN.finditer(body):
        end = m.start()
        if m.group(1) is not None:
            start = body.rfind(b"\n", 0, end) + 1
            if not _OPEN_HEADER.match(body, start, end):
                continue
        positions.append(end)
    if not positions:
        return []
    joins: list[int] = []
    line = 0
    prev = 0
    for pos in positions:
        line += body.count(b"\n", prev, pos)
        prev = pos
        if not joins or joins[-1] != line:
            joins.append(line)
    return joins


def group_lines(
    lines: list[bytes], joins: list[int], max_lines: int, max_bytes: int
) -> list[bytes]:
    """Merge each line k in `joins` with line k+1, bounded by `max_lines`/`max_bytes`."""
    out: list[bytes] = []
    start = 0
    i = 0
    n = len(joins)
    while i < n:
        first = joins[i]
        last = first
        while i + 1 < n and joins[i + 1] == last + 1:
            i += 1
            last += 1
        i += 1
        out.extend(lines[start:first])
        group = lines[first : last + 2]
        start = last + 2
        out.extend(_bounded(group, max_lines, max_bytes))
    out.extend(lines[start:])
    return out


def _bounded(group: list[bytes], max_lines: int, max_bytes: int) -> list[bytes]:
    if len(group) <= max_lines and sum(map(len, group)) + len(group) <= max_bytes:
        return [b"\n".join(group)]
    # Too big for one event: cut into pieces that each respect both bounds.
    pieces: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for line in group:
        if current and (len(current) >= max_lines or size + len(line) + 1 > max_bytes):
            pieces.append(b"\n".join(current))
            current, size = [], 0
        current.append(line[:max_bytes])
        size += len(line) + 1
    if current:
        pieces.append(b"\n".join(current))
    return pieces
