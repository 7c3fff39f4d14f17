"""The event model (SPEC §1) and the batch, the unit the pipeline moves.

Ingest does only framing: it cuts the byte stream into event texts (one line,
or a multi-line block) and hands them on as a `Batch`. Turning a text into a
structured `Event` costs a few microseconds of Python per line, which would cap
ingest well below its target, so it is done once, on first read, and cached on
the batch (`Batch.events`). Every reader (query, a sink that needs structure)
sees the same parsed events.
"""

from __future__ import annotations

from typing import Any

LEVELS: tuple[str, ...] = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")

# Spellings seen in the wild -> the canonical level. Keys are lower case.
LEVEL_ALIASES: dict[str, str] = {
    "trace": "TRACE",
    "debug": "DEBUG",
    "dbg": "DEBUG",
    "info": "INFO",
    "information": "INFO",
    "informational": "INFO",
    "notice": "INFO",
    "warn": "WARN",
    "warning": "WARN",
    "error": "ERROR",
    "err": "ERROR",
    "severe": "ERROR",
    "fatal": "FATAL",
    "critical": "FATAL",
    "crit": "FATAL",
    "alert": "FATAL",
    "emerg": "FATAL",
    "emergency": "FATAL",
    "panic": "FATAL",
}


def normalize_level(word: str | None) -> str | None:
    """Map a level spelling to its canonical name, or None if it is not a level."""
    if not word:
        return None
    return LEVEL_ALIASES.get(word.lower())


class Event:
    """One parsed log record. Built by `logcaster.pipeline.parse.parse_event`."""

    __slots__ = (
        "body",
        "fields",
        "host",
        "id",
        "level",
        "message",
        "pod",
        "received_at",
        "service",
        "source",
        "ts",
        "version",
    )

    def __init__(
        self,
        id: int,
        received_at: float,
        source: str,
        body: str,
        message: str,
        ts: float,
        level: str | None = None,
        service: str | None = None,
        version: str | None = None,
        host: str | None = None,
        pod: str | None = None,
        fields: dict[str, Any] | None = None,
    ) -> None:
        self.id = id
        self.received_at = received_at
        self.source = source
        self.body = body
        self.message = message
        self.ts = ts
        self.level = level
        self.service = service
        self.version = version
        self.host = host
        self.pod = pod
        self.fields: dict[str, Any] = fields if fields is not None else {}

    @property
    def first_line(self) -> str:
        """The event's original first line, as shown by the line protocol."""
        end = self.body.find("\n")
        return self.body if end < 0 else self.body[:end]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ts": self.ts,
            "received_at": self.received_at,
            "level": self.level,
            "service": self.service,
            "version": self.version,
            "host": self.host,
            "pod": self.pod,
            "message": self.message,
            "body": self.body,
            "fields": self.fields,
            "source": self.source,
        }

    def __repr__(self) -> str:
        return f"Event(id={self.id}, level={self.level}, service={self.service}, {self.message!r})"


class Batch:
    """Event texts read together from one source, with consecutive ids.

    `texts[i]` is the raw bytes of event `first_id + i` (lines of a multi-line
    event joined by b"\\n"). `nbytes` is what the batch weighs in the queue.
    """

    __slots__ = ("_events", "first_id", "nbytes", "received_at", "source", "texts")

    def __init__(self, first_id: int, received_at: float, source: str, texts: list[bytes]) -> None:
        self.first_id = first_id
        self.received_at = received_at
        self.source = source
        self.texts = texts
        # The payload plus a per-event overhead estimate (list slot + bytes header).
        self.nbytes = sum(map(len, texts)) + 40 * len(texts)
        self._events: list[Event] | None = None

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def last_id(self) -> int:
        return self.first_id + len(self.texts) - 1

    @property
    def cached_events(self) -> list[Event] | None:
        """The parsed events if `events()` has run, else None; never parses.

        For code in another thread (the file sink's JSON encoding): reading the
        reference is atomic, and leaving the cache alone means the event loop's
        readers never see it change under them.
        """
        return self._events

    def set_events(self, events: list[Event]) -> None:
        """Give a batch cut from another its already parsed events (tail sampling)."""
        self._events = events

    def events(self) -> list[Event]:
        """The parsed events, parsed on first call and cached."""
        if self._events is None:
            from logcaster.pipeline.parse import parse_batch

            self._events = parse_batch(self)
        return self._events
