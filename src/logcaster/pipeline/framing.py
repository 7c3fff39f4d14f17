"""Cut one connection's byte stream into event texts (the ingest hot path).

Works a chunk at a time with bytes methods: one `rfind`, one `split`, and two
regex scans for multi-line grouping. Per line, no Python code runs unless a
line is over-long or part of a multi-line event.

Bounded state per connection: the unfinished last line (at most
`max_line_bytes`; beyond that it is truncated and the rest of the line is
discarded up to the next newline) and, with multi-line grouping on, the last
complete event, held back until the next line shows whether it continues.
"""

from __future__ import annotations

from typing import Protocol

from logcaster.config import MultilineConfig
from logcaster.pipeline.multiline import group_lines, join_points

TRUNCATION_MARK = b"..."


class Framer(Protocol):
    """Cuts one connection's byte stream into event texts."""

    truncated: int

    @property
    def holding(self) -> bool: ...

    @property
    def held_lines(self) -> int:
        """Input lines (newlines read) that belong to the held event, not yet released."""
        ...

    def feed(self, data: bytes) -> list[bytes]: ...

    def flush_held(self) -> list[bytes]: ...

    def close(self) -> list[bytes]: ...


class LineFramer:
    __slots__ = (
        "_discarding",
        "_held",
        "_held_bytes",
        "_held_lines",
        "_max_bytes",
        "_max_line",
        "_max_lines",
        "_multiline",
        "_partial",
        "truncated",
    )

    def __init__(self, max_line_bytes: int, multiline: MultilineConfig | None) -> None:
        self._max_line = max_line_bytes
        self._multiline = multiline is not None and multiline.enabled
        self._max_lines = multiline.max_lines if multiline else 1
        self._max_bytes = multiline.max_bytes if multiline else max_line_bytes
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

    def _truncate(self, line: bytes) -> bytes:
        self.truncated += 1
        return line[: self._max_line - len(TRUNCATION_MARK)] + TRUNCATION_MARK

    def _probe(self) -> bytes | None:
        """The held event's last line: all the grouping rules need to see of it."""
        if not self._held:
            return None
        last = self._held[-1]
        return last[last.rfind(b"\n") + 1 :]

    def feed(self, data: bytes) -> list[bytes]:
        """Take the next bytes of the stream; return the event texts now complete."""
        if self._discarding:
            nl = data.find(b"\n")
            if nl < 0:
                return []
            data = data[nl + 1 :]
            self._discarding = False
        if self._partial:
            data = self._partial + data
            self._partial = b""
        end = data.rfind(b"\n")
        tail = data[end + 1 :]
        # A "\r" at the very end may be the first half of a CRLF: it is not content.
        if len(tail) - tail.endswith(b"\r") > self._max_line:
            # An over-long unfinished line: keep its head, drop the rest until "\n".
            cut = self._truncate(tail)
            self._discarding = True
        else:
            cut = b""
            self._partial = tail
        probe = self._probe()
        if end < 0:
            if not cut:
                return []
            if probe is None:
                return self._group([cut], cut, None)
            return self._group([probe, cut], probe + b"\n" + cut, probe)
        body = data[:end]
        if b"\r" in body:
            body = body.replace(b"\r\n", b"\n")
            if body.endswith(b"\r"):
                body = body[:-1]
        if probe is not None:
            body = probe + b"\n" + body
        lines = body.split(b"\n")
        if len(body) > self._max_line and max(map(len, lines)) > self._max_line:
            limit = self._max_line
            lines = [line if len(line) <= limit else self._truncate(line) for line in lines]
        if cut:
            lines.append(cut)
            body += b"\n" + cut
        return self._group(lines, body, probe)

    def _group(self, lines: list[bytes], body: bytes, probe: bytes | None) -> list[bytes]:
        """Apply multi-line grouping; `body` is `lines` joined by newlines.

        With an event held, `lines[0]` is its last line (`probe`), fed again so
        the rules can see whether the new lines continue it.
        """
        if not self._multiline:
            return lines
        joins = join_points(body)
        if joins:
            lines = group_lines(lines, joins, self._max_lines, self._max_bytes)
        out: list[bytes] = []
        if probe is not None:
            continued = lines[0][len(probe) :]  # b"" or the joined lines, with their "\n"
            fits = (
                self._held_lines + continued.count(b"\n") <= self._max_lines
                and self._held_bytes + len(continued) <= self._max_bytes
            )
            if continued and fits:
                self._held.append(continued)
                self._held_lines += continued.count(b"\n")
                self._held_bytes += len(continued)
                if len(lines) == 1:
                    return out  # still held: the next read may continue it further
            out.append(b"".join(self._held))
            if continued and not fits:
                lines[0] = continued[1:]  # the held event is full: the rest starts anew
            else:
                del lines[0]
        last = lines.pop()
        self._held = [last]
        self._held_lines = last.count(b"\n") + 1
        self._held_bytes = len(last)
        out.extend(lines)
        return out

    def flush_held(self) -> list[bytes]:
        """Release the held-back event (idle timeout)."""
        if not self._held:
            return []
        event = b"".join(self._held)
        self._held = []
        return [event]

    def close(self) -> list[bytes]:
        """End of stream: everything left, including a last line without newline."""
        out = self.feed(b"\n") if self._partial else []
        self._discarding = False
        out.extend(self.flush_held())
        return out
