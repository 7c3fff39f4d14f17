"""The server's own logs: one JSON object per line on stderr.

Fields may carry what clients sent (a command, a path, a peer's text): the
line is terminal-safe JSON (`json_safe`), so a log viewer is not driven by it.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson

from logcaster.security.neutralize import json_safe


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": getattr(record, "event", None) or record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            doc.update(fields)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json_safe(orjson.dumps(doc, default=str)).decode()


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    # On the root logger, so records of libraries (asyncio's "exception in
    # callback" reports, for one) come out as JSON lines too.
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("logcaster").setLevel(level.upper())


def log_event(
    logger: logging.Logger, level: int, event: str, *, always: bool = False, **fields: Any
) -> None:
    """Log one named internal event with its fields as JSON keys.

    `always` bypasses the level filter, for the few lines tools depend on
    (`ready` with the bound ports, `stopped` with the final counts).
    """
    if always or logger.isEnabledFor(level):
        record = logger.makeRecord(
            logger.name,
            level,
            "(log_event)",
            0,
            event,
            (),
            None,
            extra={"event": event, "fields": fields},
        )
        logger.handle(record)


def error_text(exc: BaseException) -> str:
    """An exception as a log field: its type, then its message."""
    return f"{type(exc).__name__}: {exc}"
