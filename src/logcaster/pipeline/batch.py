"""The batch: event texts read together, the unit the pipeline moves.

Ingest does only framing: it cuts the byte stream into event texts (one line,
or a multi-line block) and hands them on as a `Batch`. Turning a text into a
structured `Event` costs a few microseconds of Python per line, which would cap
ingest well below its target, so it is done once, on first read, and cached on
the batch (`Batch.events`). Every reader (query, a sink that needs structure)
sees the same parsed events. The batch, not the event model, owns "parse on
first read": it is the one that holds both the texts and the cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from logcaster.event import Event
from logcaster.parsing.parse import parse_event
from logcaster.segments.blocks import decode_payload

# What one event weighs in the queue beyond its text (a list slot and a bytes header).
EVENT_OVERHEAD = 40
# Between a source label and its stream mark where a label is all a store keeps
# (the forward spool's block header): a byte no source label holds.
_MARK_SEP = "\x1e"


@dataclass(frozen=True, slots=True)
class Escaped:
    """Event texts held as one raw-mode payload (segments/blocks.py: escaped lines,
    each ending in a newline), as the line framer cuts a read of plain lines
    (pipeline/framing.py): no bytes object per event until a reader asks for the
    texts, and the file sink writes the payload as it is."""

    payload: bytes
    count: int  # events (lines of the payload)
    size: int  # bytes of the texts (unescaped, without their newlines)

    def __len__(self) -> int:
        return self.count

    def texts(self) -> list[bytes]:
        return decode_payload(self.payload, self.count)


Texts = list[bytes] | Escaped


def text_list(texts: Texts) -> list[bytes]:
    """The texts as a list (decoded from an `Escaped` payload)."""
    return texts.texts() if isinstance(texts, Escaped) else texts


def texts_size(texts: Texts) -> int:
    """Bytes of the texts (without newlines)."""
    return texts.size if isinstance(texts, Escaped) else sum(map(len, texts))


class StreamMark(NamedTuple):
    """Where a batch sits in a client's named stream (acknowledged delivery with a
    session, docs/acknowledged-delivery.md): the session, and the number of the
    line its first text starts on. The event of text i starts on line `seq` plus
    the lines of the texts before it, so (session, that line) names the event
    whichever connection or node carried it: scale-out's writers store it once."""

    session: str  # 32 lower-case hex digits
    seq: int


def mark_label(source: str, mark: StreamMark) -> str:
    """`source` with `mark` appended, for a store that keeps only a label; cut so the
    block header's 128 bytes keep the mark whole."""
    return f"{source[:60]}{_MARK_SEP}{mark.session}/{mark.seq}"


def split_label(label: str) -> tuple[str, StreamMark | None]:
    """`mark_label` undone; a label without a mark is returned as it is."""
    source, sep, mark = label.rpartition(_MARK_SEP)
    session, slash, seq = mark.partition("/")
    if not sep or not slash or not seq.isdigit() or len(session) != 32:
        return label, None
    return source, StreamMark(session, int(seq))


class Batch:
    """Event texts read together from one source, with consecutive ids.

    `texts[i]` is the raw bytes of event `first_id + i` (lines of a multi-line
    event joined by b"\\n"). `nbytes` is what the batch weighs in the queue.
    Made from an `Escaped` payload, the batch decodes its texts on first use
    (`texts`); `payload` is that payload, for the file sink.
    """

    __slots__ = (
        "_count",
        "_escaped",
        "_events",
        "_head",
        "_texts",
        "first_id",
        "nbytes",
        "received_at",
        "source",
        "stream",
    )

    def __init__(
        self,
        first_id: int,
        received_at: float,
        source: str,
        texts: Texts,
        stream: StreamMark | None = None,
    ) -> None:
        self.first_id = first_id
        self.received_at = received_at
        self.source = source
        self.stream = stream
        self._count = len(texts)
        if isinstance(texts, Escaped):
            self._escaped: Escaped | None = texts
            self._texts: list[bytes] | None = None
            self.nbytes = texts.size + EVENT_OVERHEAD * texts.count
        else:
            self._escaped = None
            self._texts = texts
            self.nbytes = sum(map(len, texts)) + EVENT_OVERHEAD * len(texts)
        self._events: list[Event] | None = None
        # The parsed first events, before the whole batch is (see events_between).
        self._head: list[Event] | None = None

    @property
    def texts(self) -> list[bytes]:
        """The event texts (decoded from the payload on first use, then kept; two
        threads decoding at once both get equal lists)."""
        texts = self._texts
        if texts is None:
            assert self._escaped is not None
            self._texts = texts = self._escaped.texts()
        return texts

    @property
    def payload(self) -> bytes | None:
        """The texts as a raw-mode payload, when the batch was made from one."""
        return None if self._escaped is None else self._escaped.payload

    def __len__(self) -> int:
        return self._count

    @property
    def last_id(self) -> int:
        return self.first_id + self._count - 1

    def cut(self, start: int, stop: int | None = None) -> Batch:
        """Events `start..stop-1` as a batch with their ids, stream mark and parsed
        events (when cached)."""
        texts = self.texts
        stop = len(texts) if stop is None else stop
        mark = self.stream
        if mark is not None and start:
            lines = start + sum(t.count(b"\n") for t in texts[:start])
            mark = StreamMark(mark.session, mark.seq + lines)
        part = Batch(self.first_id + start, self.received_at, self.source, texts[start:stop], mark)
        if self._events is not None:
            part._events = self._events[start:stop]
        return part

    @property
    def cached_events(self) -> list[Event] | None:
        """The parsed events if `events()` has run, else None; never parses.

        For code in another thread (the file sink's JSON encoding): reading the
        reference is atomic, and leaving the cache alone means the event loop's
        readers never see it change under them.
        """
        return self._events

    def events_between(self, start: int, stop: int, whole_max: int) -> list[Event]:
        """The parsed events `start..stop-1`: from the cache; else by parsing the
        whole batch (cached) when it holds at most `whole_max` events; else only
        these. A reader on the event loop (the live tail) thus never parses much
        more than it asked for, even from a 100,000-event HTTP batch.

        Events read from the batch's start on are kept as its parsed head, which
        grows as readers ask for more: rate-capped tails all keep the first events
        of each delivered batch (pipeline/tail_rate.py), so five dashboards parse
        one head, not five. The head only ever grows, so a thread reading it for
        `events()` sees a consistent prefix."""
        events = self._events
        if events is None and len(self.texts) <= whole_max:
            events = self.events()
        if events is not None:
            return events[start:stop]
        head = self._head
        done = 0 if head is None else len(head)
        if start > done:  # not contiguous with the head: parse just these
            return self._parse(start, stop)
        if stop > done:
            more = self._parse(done, stop)
            if head is None:
                self._head = head = more
            else:
                head.extend(more)
        return [] if head is None else head[start:stop]

    def events(self) -> list[Event]:
        """The parsed events, parsed on first call (past any parsed head) and cached."""
        if self._events is None:
            head = self._head
            done = head[:] if head is not None else []
            done.extend(self._parse(len(done), len(self.texts)))
            self._events = done
            self._head = None  # the whole list holds them now
        return self._events

    def _parse(self, start: int, stop: int) -> list[Event]:
        first, received, source, texts = self.first_id, self.received_at, self.source, self.texts
        return [parse_event(first + i, received, source, texts[i]) for i in range(start, stop)]
