"""The event model (SPEC §1): one parsed log record and its level names.

Events are made by the parser (`parsing/parse.py`) when a reader first needs
a batch's structure (`pipeline/batch.py`); this module knows neither.
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
    """One parsed log record."""

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

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Event:
        """The event `to_dict` gave (a JSON answer read back: `logcaster tail`)."""
        return cls(
            int(doc["id"]),
            float(doc.get("received_at") or 0.0),
            str(doc.get("source") or ""),
            str(doc.get("body") or ""),
            str(doc.get("message") or ""),
            float(doc.get("ts") or 0.0),
            doc.get("level"),
            doc.get("service"),
            doc.get("version"),
            doc.get("host"),
            doc.get("pod"),
            doc.get("fields") or {},
        )

    def __repr__(self) -> str:
        return f"Event(id={self.id}, level={self.level}, service={self.service}, {self.message!r})"
