"""Cut one connection's byte stream into event texts (the ingest hot path).

Works a chunk at a time with bytes methods: one `rfind`, one `split`, and one
regex scan for multi-line grouping (`multiline.py`). Per line, no Python code
runs unless a line is over-long or part of a multi-line event.

Bounded state per connection: the unfinished last line (at most
`max_line_bytes`; beyond that it is truncated and the rest of the line is
discarded up to the next newline) and, with multi-line grouping on, the last
complete event, held back until the next line shows whether it continues, with
the grouping state after it (`GroupState`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from logcaster.options import MultilineConfig
from logcaster.parsing import multiline
from logcaster.parsing.multiline import START, Grouper, GroupState, Scan, group_lines
from logcaster.pipeline.batch import Escaped, Texts, text_list
from logcaster.segments import blocks

TRUNCATION_MARK = b"..."

try:
    from logcaster.segments._escape import (  # type: ignore[import-not-found]
        escape_events as _c_escape_events,
    )
    from logcaster.segments._escape import (
        escape_lines as _c_escape_lines,
    )
except ImportError:  # not built (scripts/build-native): reads are split into lines
    _c_escape_lines = _c_escape_events = None

# segments/_escape.c's escape_lines(head, body, end, closed) -> (payload, lines)
# and escape_events(head, body, joins, hold, max_lines, max_bytes) -> (payload,
# events, held_at) | None; None where it is not built. Tests switch them.
_ESCAPE: Callable[[bytes, bytes, int, bool], tuple[bytes, int]] | None = _c_escape_lines
_EVENTS: Callable[[bytes, bytes, list[int], int, int, int], tuple[bytes, int, int] | None] | None
_EVENTS = _c_escape_events


class Framer(Protocol):
    """Cuts one connection's byte stream into event texts."""

    truncated: int

    @property
    def holding(self) -> bool: ...

    @property
    def held_lines(self) -> int:
        """Input lines (newlines read) that belong to the held event, not yet released."""
        ...

    @property
    def partial(self) -> bool:
        """True while the stream has stopped inside a line (or message): bytes read
        that do not end one yet (`ingest.line_timeout` bounds how long)."""
        ...

    def feed(self, data: bytes) -> list[bytes]: ...

    def feed_read(self, data: bytes) -> Texts:
        """`feed`, with the texts as one escaped payload where the framer can."""
        ...

    def flush_held(self) -> list[bytes]: ...

    def close(self) -> list[bytes]: ...


def _may_hold_long_line(body: bytes, max_line: int) -> bool:
    """False when no line of `body` is longer than `max_line` bytes; True when one
    may be (the caller then measures the lines).

    A line of more than `max_line` bytes covers at least one whole window of
    `max_line // 2` bytes aligned on a multiple of it, so a body with a newline
    in every such window has none. One `find` per window, each stopping at the
    window's first newline: a few per read instead of a `len` per line.
    """
    if len(body) <= max_line:
        return False
    half = max_line // 2
    if half < 256:
        return True  # tiny limits (tests): measuring the lines is as cheap
    find = body.find
    for start in range(0, len(body) - half + 1, half):
        if find(b"\n", start, start + half) < 0:
            return True
    return False


class LineFramer:
    __slots__ = (
        "_discarding",
        "_grouper",
        "_held",
        "_held_bytes",
        "_held_lines",
        "_max_bytes",
        "_max_line",
        "_max_lines",
        "_multiline",
        "_partial",
        "_state",
        "truncated",
    )

    def __init__(
        self,
        max_line_bytes: int,
        multiline: MultilineConfig | None,
        grouper: Grouper | None = None,
    ) -> None:
        """`grouper`: the listener's grouping rules (default: the built-in ones and
        every `multiline.rules` entry)."""
        self._max_line = max_line_bytes
        self._multiline = multiline is not None and multiline.enabled
        self._max_lines = multiline.max_lines if multiline else 1
        self._max_bytes = multiline.max_bytes if multiline else max_line_bytes
        if grouper is None:
            grouper = Grouper(multiline.rules if multiline is not None else [])
        self._grouper = grouper
        self._state: GroupState = START
        self._partial = b""
        # The held event as pieces (joined with b"" on release), so a long stack
        # trace arriving a line per read is never copied or rescanned whole.
        self._held: list[bytes] = []
        self._held_lines = 0
        self._held_bytes = 0
        self._discarding = False
        self.truncated = 0  # lines cut at max_line_bytes, for the stats

    @property
    def holding(self) -> bool:
        """True while an event is held back waiting for possible continuation lines."""
        return bool(self._held)

    @property
    def held_lines(self) -> int:
        return self._held_lines if self._held else 0

    @property
    def partial(self) -> bool:
        return bool(self._partial) or self._discarding

    def _truncate(self, line: bytes) -> bytes:
        self.truncated += 1
        return line[: self._max_line - len(TRUNCATION_MARK)] + TRUNCATION_MARK

    def _held_last_line(self) -> bytes | None:
        """The held event's last line (None: nothing held)."""
        if not self._held:
            return None
        last = self._held[-1]
        return last[last.rfind(b"\n") + 1 :]

    def feed(self, data: bytes) -> list[bytes]:
        """Take the next bytes of the stream; return the event texts now complete."""
        return text_list(self.feed_read(data))

    def feed_read(self, data: bytes) -> Texts:
        """`feed`, with the texts as one escaped payload (`Escaped`, no bytes object
        per line) when the read's lines are all events of their own and none is
        over the limit, and the C extensions are built (scripts/build-native)."""
        if self._discarding:
            nl = data.find(b"\n")
            if nl < 0:
                return []
            data = data[nl + 1 :]
            self._discarding = False
        partial = self._partial
        end = data.rfind(b"\n")
        if partial and end < 0:
            data = partial + data  # still no line end: the partial line grows
            partial = b""
        self._partial = b""
        tail = data[end + 1 :]
        # A "\r" at the very end may be the first half of a CRLF: it is not content.
        if len(tail) - tail.endswith(b"\r") > self._max_line:
            # An over-long unfinished line: keep its head, drop the rest until "\n".
            cut = self._truncate(tail)
            self._discarding = True
        else:
            cut = b""
            self._partial = tail
        if end < 0:
            return self._group([cut], cut) if cut else []
        # One copy of the read: the partial line and the complete lines after it.
        body = b"".join((partial, memoryview(data)[:end])) if partial else data[:end]
        if b"\r" in body:
            body = body.replace(b"\r\n", b"\n")
            if body.endswith(b"\r"):
                body = body[:-1]
        scan = None
        long_lines = _may_hold_long_line(body, self._max_line)
        if not cut and _ESCAPE is not None and not long_lines:
            if not self._multiline:
                payload, count = _ESCAPE(b"", body, len(body), False)
                return Escaped(payload, count, len(body) - count + 1)
            if multiline.candidate_lines is not None:
                scan = self._grouper.scan(None, body, self._state, self._held_last_line())
                escaped = self._escaped(body, scan)
                if escaped is not None:
                    return escaped
        lines = body.split(b"\n")
        if long_lines and max(map(len, lines)) > self._max_line:
            limit = self._max_line
            lines = [line if len(line) <= limit else self._truncate(line) for line in lines]
        if cut:
            lines.append(cut)
            body += b"\n" + cut
        return self._group(lines, body, scan)

    def _escaped(self, body: bytes, scan: Scan) -> Escaped | None:
        """The read's events as one payload: the held event (and any lines it gives
        back), then each event the read completes, grouped by `scan`; the last is
        held. None, with nothing changed, where only the lines can say: lines that
        continue the held event, or an event over multiline's bounds (cut there)."""
        joins = scan.joins
        if (joins and joins[0] == 0) or _EVENTS is None:
            return None
        hold = scan.lines - 1  # the last event's first line
        at = len(joins) - 1
        while at >= 0 and joins[at] == hold:
            hold -= 1
            at -= 1
        out = self._held_events(scan.detach) if self._held else []
        head = blocks.encode_payload(out) if out else b""
        done = _EVENTS(head, body, joins, hold, self._max_lines, self._max_bytes)
        if done is None:
            return None
        payload, events, held_at = done
        held = body[held_at:]
        held_lines = scan.lines - hold
        if held_lines > self._max_lines or len(held) + 1 > self._max_bytes:
            return None
        self._state = scan.state
        self._held = [held]
        self._held_lines = held_lines
        self._held_bytes = len(held)
        # The texts' bytes: the lines' without the newline that ends each event.
        return Escaped(payload, len(out) + events, sum(map(len, out)) + held_at - events)

    def _group(self, lines: list[bytes], body: bytes, scan: Scan | None = None) -> list[bytes]:
        """Apply multi-line grouping to the complete `lines` (`body` split on "\\n");
        `scan`: the grouping's walk of them, when done already."""
        if not self._multiline:
            return lines
        if scan is None:
            scan = self._grouper.scan(lines, body, self._state, self._held_last_line())
        self._state = scan.state
        out = self._release(scan.detach) if scan.detach else []
        joins = scan.joins
        k = 0  # lines[:k] continue the held event
        while k < len(joins) and joins[k] == k:
            k += 1
        if k:
            added = sum(map(len, lines[:k])) + k
            if (
                self._held_lines + k <= self._max_lines
                and self._held_bytes + added <= self._max_bytes
            ):
                self._held.append(b"\n" + b"\n".join(lines[:k]))
                self._held_lines += k
                self._held_bytes += added
                if k == len(lines):
                    return out  # still held: the next read may continue it further
            else:
                k = 0  # the held event is full: what continues it starts anew
                joins = joins[1:]
                self._state = scan.state._replace(pending=0)
        if self._held:
            out += self._release()
        rest = lines[k:]
        if len(joins) > k:
            rest = group_lines(rest, [j - k for j in joins[k:]], self._max_lines, self._max_bytes)
        last = rest.pop()
        self._held = [last]
        self._held_lines = last.count(b"\n") + 1
        self._held_bytes = len(last)
        out.extend(rest)
        return out

    def _release(self, detach: int = 0) -> list[bytes]:
        """The held event, then (`detach`) its last lines, joined only tentatively (blank
        lines, a headline under a record), as events of their own."""
        events = self._held_events(detach)
        self._held = []
        return events

    def _held_events(self, detach: int) -> list[bytes]:
        """What `_release` releases, still held."""
        event = b"".join(self._held)
        if not detach:
            return [event]
        lines = event.split(b"\n")
        detach = min(detach, len(lines) - 1)  # never the whole event
        if detach <= 0:
            return [event]
        return [b"\n".join(lines[:-detach]), *lines[-detach:]]

    def flush_held(self) -> list[bytes]:
        """Release the held-back event (idle timeout); lines held at its end for a
        trace that may go on go out as events of their own."""
        if not self._held:
            return []
        pending = self._state.pending
        self._state = START
        return self._release(pending)

    def close(self) -> list[bytes]:
        """End of stream: everything left, including a last line without newline."""
        out = self.feed(b"\n") if self._partial else []
        self._discarding = False
        out.extend(self.flush_held())
        return out
