"""One followed file: its descriptor, where reading stands, its framer, its positions.

Three offsets, each only moving forward within one generation of the file (a
truncation starts a new one):

- `read_to`: bytes read from the file so far;
- `consumed`: every byte before it is in events handed to the pipeline. The
  unfinished last line (`_tail`, bytes after the last newline read) and an
  event the framer holds for possible continuation lines are after it;
- `durable`: every byte before it is in events the sinks hold durably (the
  pipeline's durable watermark passed their ids). Only this one is saved.

The framer is fed whole lines only (the unfinished one stays here), so the
framer's `held_lines` alone tells where its held event starts: the position
after a batch is exact, and it travels in the batch's source label
(labels.py): the file sink stores it in the block with the lines.
"""

from __future__ import annotations

import os
import time
from collections import deque

from logcaster.pipeline.framing import LineFramer
from logcaster.pipeline.pipeline import Offered, Pipeline
from logcaster.sources.files.identity import FileId
from logcaster.sources.files.labels import PREFIX, file_label


class Tailer:
    """See the module docstring. Blocking reads are the caller's (source.py)."""

    def __init__(
        self,
        path: str,
        fd: int,
        fid: FileId,
        offset: int,
        service: str,
        framer: LineFramer,
        max_line: int,
    ) -> None:
        self.path = path
        self.input = 0  # which sources.files.inputs entry found it
        self.fd = fd
        self.id: FileId | None = fid  # None after a truncation, until a line is there
        self.read_to = offset
        self.consumed = offset
        self.durable = offset
        self.service = service
        self.source = PREFIX + service
        self._framer = framer
        self._max_line = max_line
        self._tail = b""  # the unfinished last line (its head only, past max_line)
        self._tail_at = offset  # the file offset the unfinished line starts at
        self._discarding = False  # the unfinished line is longer than max_line
        self.pending: deque[tuple[int, int]] = deque()  # (last id submitted, consumed then)
        self.gone = False  # renamed away or deleted: read to its end, then close
        self.gone_at = 0.0  # when `gone` was seen (monotonic)
        self.last_data = time.monotonic()
        self.lines = 0  # newlines read, for the metrics
        self.truncated_lines = 0  # lines cut at max_line_bytes already counted
        self.opened_at = time.monotonic()  # for the turns when files wait for a slot
        self.at_end = False  # the last look found nothing new: check the head first

    @property
    def holding(self) -> bool:
        return self._framer.holding

    @property
    def held_lines(self) -> int:
        """Whole lines in the event the framer holds (0 after `finish`)."""
        return self._framer.held_lines

    def take(self, data: bytes, pipeline: Pipeline) -> Offered | None:
        """Process the bytes read at `read_to`; the last offer's answer (None: none made)."""
        start = self.read_to
        self.read_to += len(data)
        self.last_data = time.monotonic()
        end = data.rfind(b"\n")
        if end < 0:
            self._hold(data)
            return None
        self.lines += data.count(b"\n")
        offered = None
        if self._tail or self._discarding:
            # The unfinished line ends here: it goes alone (mapped to its own start).
            nl = data.find(b"\n")
            line = self._tail + (b"" if self._discarding else data[:nl]) + b"\n"
            offered = self._feed(line, self._tail_at, start + nl + 1, pipeline)
            data, start, end = data[nl + 1 :], start + nl + 1, end - nl - 1
            self._tail, self._discarding = b"", False
        if end >= 0:
            lines = data[: end + 1]
            offered = self._feed(lines, start, start + end + 1, pipeline) or offered
        self._tail_at = start + end + 1
        self._hold(data[end + 1 :])
        return offered

    def _hold(self, rest: bytes) -> None:
        """Keep the unfinished line; past max_line only its head (the framer cuts it)."""
        if self._discarding or not rest:
            return
        self._tail += rest
        if len(self._tail) > self._max_line:
            self._tail = self._tail[: self._max_line + 1]
            self._discarding = True

    def _feed(self, data: bytes, at: int, end: int, pipeline: Pipeline) -> Offered | None:
        """Frame whole lines `data` (file bytes `at`..`end`, or one cut line) and submit."""
        framer = self._framer
        texts = framer.feed(data)
        held = framer.held_lines
        if held == 0:
            consumed = end
        elif held <= data.count(b"\n"):
            # The held event is the last `held` lines: it starts after the newline before.
            idx = len(data) - 1
            for _ in range(held):
                idx = data.rfind(b"\n", 0, idx)
            consumed = at + idx + 1 if idx >= 0 else at
        else:
            consumed = self.consumed  # the held event began in an earlier read
        return self._submit(texts, consumed, pipeline)

    def _submit(self, texts: list[bytes], consumed: int, pipeline: Pipeline) -> Offered | None:
        self.consumed = max(self.consumed, consumed)
        if not texts:
            return None
        fid = self.id
        label = self.source if fid is None else file_label(self.service, fid.key, consumed)
        offered = pipeline.offer(texts, label)
        self.pending.append((pipeline.last_id, self.consumed))
        return offered

    def flush_held(self, pipeline: Pipeline) -> Offered | None:
        """Release an event held for continuation lines (idle, or the end of the file)."""
        texts = self._framer.flush_held()
        return self._submit(texts, self.read_to - len(self._tail), pipeline)

    def finish(self, pipeline: Pipeline) -> None:
        """The file ends for good (read to its end after a rotation or deletion): its
        unfinished last line is a line, and nothing is held any more."""
        if self._tail:
            self._feed(self._tail + b"\n", self._tail_at, self.read_to, pipeline)
            self._tail = b""
        self._submit(self._framer.close(), self.read_to, pipeline)

    def restart(self, framer: LineFramer) -> None:
        """A truncation (copytruncate): read again from 0 as a new generation."""
        self.read_to = self.consumed = self.durable = self._tail_at = 0
        self._tail, self._discarding = b"", False
        self._framer = framer
        self.pending.clear()  # positions of the old content: its key is gone with it
        self.id = None
        self.truncated_lines = 0  # the new framer counts from 0 (the source counted the old)

    def durable_moved(self, durable_id: int) -> bool:
        """Advance `durable` past the events now durable; True if it moved."""
        pending = self.pending
        moved = False
        while pending and pending[0][0] <= durable_id:
            self.durable = pending.popleft()[1]
            moved = True
        return moved

    @property
    def truncated(self) -> int:
        return self._framer.truncated

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
