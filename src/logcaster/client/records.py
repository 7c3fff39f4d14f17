"""`JsonFormatter`: a log record as one JSON line the server parses into fields.

The keys are those `logcaster.parsing.parse` reads into an event's own
attributes: `ts`, `level`, `service`, `host`, `message`; everything else
(`logger`, `exception`, `stack`, the record's `extra` values) becomes the
event's `fields`. So `QUERY level=ERROR service=checkout` finds a record, and
a traceback stays inside its one line (JSON escapes its newlines) instead of
relying on the server's multi-line grouping.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
from datetime import UTC, datetime

# Attributes every LogRecord has: anything else on a record came from `extra=`.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime"}
)
# Keys the formatter owns; an `extra` value with one of these names is kept as `extra.NAME`.
_OWN = frozenset(("ts", "level", "logger", "message", "exception", "stack"))


def default_service() -> str:
    """The program's name: `python -m app` and `app.py` both give "app"."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    name = spec.name if spec is not None else os.path.basename(sys.argv[0] if sys.argv else "")
    if name.endswith(".__main__"):
        name = name[: -len(".__main__")]
    name = name.removesuffix(".py")
    return name if name and name not in ("-c", "-") else "python"


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object (no newline); see the module doc."""

    def __init__(self, service: str | None = None, host: str | None = None) -> None:
        super().__init__()
        self.service = service or default_service()
        self.host = host if host is not None else socket.gethostname()

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="microseconds"),
            "level": record.levelname,
            "service": self.service,
            "host": self.host,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exception"] = record.exc_text
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        for key, value in vars(record).items():
            if key not in _STANDARD:
                # `extra={"service": ...}` overrides the handler's service for one record.
                doc[f"extra.{key}" if key in _OWN else key] = value
        try:
            return json.dumps(doc, default=_fallback, ensure_ascii=False)
        except (TypeError, ValueError):  # e.g. an `extra` dict with tuple keys, or a cycle
            return json.dumps({k: _fallback(v) for k, v in doc.items()}, ensure_ascii=False)


def _fallback(value: object) -> object:
    """Values JSON cannot hold are sent as their str(): never a logging error."""
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"
