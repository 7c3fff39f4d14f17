"""Multi-line grouping (SPEC §3): which lines of a chunk continue the event before them.

`Grouper.scan` walks one chunk of complete lines (one read of a connection)
with the per-language state machine of `trace_lines.py`. It stays
batch-oriented: outside a trace it does not look at lines one by one but
jumps, with one C-speed regex scan of the chunk (`CANDIDATES`), to the next
line that could start or continue something; a chunk of ordinary log lines
costs that one failed scan. Inside a trace it steps line by line, since the
next line's meaning depends on the state (Python's final exception line, Go's
unindented frames); traces are a small share of the lines.

The state carries over from one chunk to the next (`GroupState`), so a trace
split across reads groups as if it had come in one. Blank lines inside a trace
join it only if the next non-blank line continues the trace; when the chunk
ends first, they join tentatively and `pending` counts them, and the next
chunk may give them back (`detach`): the framer then releases the held event
without them, followed by the blank lines as events of their own.

Operators' rules (`multiline.rules`) come first: a line matching a rule's
`start` begins an event in that rule's state, lines matching its `continue`
join it. Their starts are found with one RE2 scan of the chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import re2

from logcaster.options import MultilineConfig, MultilineRule
from logcaster.parsing import trace_lines as tl
from logcaster.parsing.user_rules import compile_pattern, scanner

try:
    from logcaster.parsing._linescan import (  # type: ignore[import-not-found]
        candidate_lines as _c_candidate_lines,
    )
except ImportError:  # not built (scripts/build-native): the regex alone finds them
    _c_candidate_lines = None

# parsing/_linescan.c's pass: ([offset, line number, ...] of the lines CANDIDATES
# may match (a superset), the body's newline count); None where it is not built.
# Tests switch it.
candidate_lines: Callable[[bytes], tuple[list[int], int]] | None = _c_candidate_lines


class GroupState(NamedTuple):
    """Where the walk stands after the last line fed (that of the held event)."""

    kind: int = tl.NONE  # a trace_lines state, or USER + k
    pending: int = 0  # blank lines at the end of the held event, joined tentatively


START = GroupState()


class Scan(NamedTuple):
    joins: list[int]  # indexes i of lines that continue the event before them (0: the held one)
    state: GroupState
    detach: int  # blank lines to take back off the end of the held event
    lines: int  # lines walked (the body's)


@dataclass(frozen=True, slots=True)
class _UserRule:
    name: str
    start: re2._Regexp
    cont: re2._Regexp


class Grouper:
    """The grouping rules for one listener: the built-in ones and the operator's."""

    __slots__ = ("_user", "_user_scan")

    def __init__(self, rules: list[MultilineRule]) -> None:
        self._user = [
            _UserRule(r.name, compile_pattern(r.start), compile_pattern(r.continue_)) for r in rules
        ]
        self._user_scan = scanner([r.start for r in rules]) if rules else None

    @classmethod
    def for_listener(cls, config: MultilineConfig, listener: str) -> Grouper:
        return cls([r for r in config.rules if not r.listeners or listener in r.listeners])

    def _candidates(self, body: bytes) -> tuple[list[tuple[int, int, int, int]], int]:
        """The lines the walk must look at when not in a trace, as (offset, kind, end:
        where an indented run ends, line number or -1: not counted), in order; the
        first line, which follows the held event, always. Then the body's line
        count, or -1 when the C pass did not count it."""
        kinds = tl.KINDS
        found = [(0, tl.START_KIND, 0, 0)]
        # With user rules an indented line may start a rule's event: every such
        # line is a candidate of its own, not a run.
        scanner = tl.CANDIDATE_LINES if self._user else tl.CANDIDATES
        count = -1
        if candidate_lines is None:
            found += [
                (m.start() + 1, kinds[m.lastgroup or ""], m.end(), -1)
                for m in scanner.finditer(body)
            ]
        else:
            # The regex only where the C pass could not rule a line out: the same
            # matches as finditer's (a match ends after the line it starts on, and
            # finditer resumes there, hence `start <= last`).
            match = scanner.match
            starts, newlines = candidate_lines(body)
            count = newlines + 1
            last = 0
            for k in range(0, len(starts), 2):
                start = starts[k]
                if start <= last:
                    continue
                m = match(body, start - 1)
                if m is not None:
                    last = m.end()
                    found.append((start, kinds[m.lastgroup or ""], last, starts[k + 1]))
        if self._user_scan is not None:
            found += [(m.start(), tl.START_KIND, 0, -1) for m in self._user_scan.finditer(body)]
            found.sort()
        return found, count

    def scan(
        self, lines: list[bytes] | None, body: bytes, state: GroupState, held: bytes | None
    ) -> Scan:
        """Which `lines` (`body` split on "\\n") continue the event before them.

        `held` is the last line of the event held from the chunk before (None:
        none is held, so line 0 cannot continue anything). `lines` None: the
        walk slices the lines it looks at from `body` (the framer's escaped
        reads, none truncated; needs the C pass, which counts them).
        """
        joins: list[int] = []
        kind = state.kind if held is not None else tl.NONE
        pending = state.pending if held is not None else 0
        blanks: list[int] = []  # this chunk's blank lines, not yet decided
        detach = 0
        cands, n = self._candidates(body)
        if lines is not None:
            n = len(lines)
        elif n < 0:
            raise ValueError("a scan without lines needs parsing/_linescan")
        c = 0  # the next candidate
        i = 0  # the line looked at, at offset `pos` in body
        pos = 0
        while i < n:
            if kind == tl.NONE:
                # Jump to the next candidate line.
                while c < len(cands) and cands[c][0] < pos:
                    c += 1
                if c == len(cands):
                    break
                off, number = cands[c][0], cands[c][3]
                i = number if number >= 0 else i + body.count(b"\n", pos, off)
                pos = off
            while c < len(cands) and cands[c][0] < pos:
                c += 1
            what, run_end = (
                (cands[c][1], cands[c][2]) if c < len(cands) and cands[c][0] == pos else (-1, 0)
            )
            line = lines[i] if lines is not None else _line_at(body, pos)
            if not line:
                if kind in tl.BLANK_OK:
                    blanks.append(i)
                else:
                    kind = tl.NONE
                i += 1
                pos += 1
                continue
            joinable = kind < tl.USER and (i > 0 or held is not None)
            if what == tl.INDENT and joinable and not self._user:
                # A run of indented lines (frames, code lines) continues any event:
                # the candidate scan found it whole.
                end = run_end
                run = body.count(b"\n", pos, end) + 1
                joins += blanks
                joins.extend(range(i, i + run))
                blanks = []
                pending = 0
                if kind == tl.JAVA_HEAD or kind == tl.DART_HEAD:
                    kind = tl.JAVA if kind == tl.JAVA_HEAD else tl.DART
                i += run
                pos = end + 1
                continue
            if (what == tl.DETAIL or what == tl.MORE) and joinable and not self._user:
                ok, new = True, tl.SEED if what == tl.DETAIL else tl.JAVA
            else:
                record = kind == tl.NONE
                ok, new = self._step(kind, line)
                if not ok:
                    if pending:
                        detach = pending  # the held event's tentative lines are its own
                        pending = 0
                    if not i:
                        prev = held
                    else:
                        prev = lines[i - 1] if lines is not None else _line_before(body, pos)
                    if what == tl.OPEN and not self._user:
                        joined, new = tl.open_header(line, prev)
                    else:
                        joined, new = self._start(line, prev, record)
                    ok = bool(joined) and prev is not None  # (None: nothing to continue)
                    if ok and joined == tl.IF_CONTINUED:
                        # Decided by the next line, as blank lines in a trace are.
                        blanks = [i]
                        kind = new
                        i += 1
                        pos = body.find(b"\n", pos) + 1
                        continue
            if ok:
                joins += blanks
                joins.append(i)
                pending = 0
            blanks = []
            kind = new
            i += 1
            pos = body.find(b"\n", pos) + 1  # (lines[i] may be truncated: not its length)
        if blanks:
            # The chunk ended inside a trace on lines not yet decided (blank lines, a
            # headline under a record): they join for now.
            joins += blanks
            pending += len(blanks)
        return Scan(joins, GroupState(kind, pending), detach, n)

    def _step(self, kind: int, line: bytes) -> tuple[bool, int]:
        if kind >= tl.USER:
            # A rule's continue lines, and indented lines (they continue any event).
            if self._user[kind - tl.USER].cont.match(line) is not None:
                return True, kind
            return line[:1] in (b" ", b"\t"), kind
        if kind == tl.NONE:
            return False, tl.NONE
        return tl.step(kind, line)

    def _start(self, line: bytes, prev: bytes | None, record: bool) -> tuple[int, int]:
        for k, rule in enumerate(self._user):
            if rule.start.match(line) is not None:
                return False, tl.USER + k
        return tl.start(line, prev, record)


def _line_at(body: bytes, pos: int) -> bytes:
    end = body.find(b"\n", pos)
    return body[pos:] if end < 0 else body[pos:end]


def _line_before(body: bytes, pos: int) -> bytes:
    """The line ending at the newline before `pos` (a line's start, not the first)."""
    return body[body.rfind(b"\n", 0, pos - 1) + 1 : pos - 1]


def group_lines(
    lines: list[bytes], joins: list[int], max_lines: int, max_bytes: int
) -> list[bytes]:
    """Merge each line in `joins` (never 0) into the event before it, bounded by
    `max_lines`/`max_bytes`."""
    out: list[bytes] = []
    start = 0
    i = 0
    n = len(joins)
    while i < n:
        first = joins[i] - 1  # the event's first line
        last = joins[i]
        while i + 1 < n and joins[i + 1] == last + 1:
            i += 1
            last += 1
        i += 1
        out.extend(lines[start:first])
        out.extend(_bounded(lines[first : last + 1], max_lines, max_bytes))
        start = last + 1
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
