"""What the parser tests share: `parse` with a known id, source and receive time.

The example tests of `parse_event` (one module a format, test_pipeline_parse_*)
and its properties all call it through `parse`, which also checks that the id,
source and receive time come through unchanged.
"""

from __future__ import annotations

from datetime import UTC, datetime

from logcaster.event import Event
from logcaster.parsing.parse import parse_event

RECEIVED = 1_768_836_000.0  # 2026-01-19 15:20:00 UTC
SOURCE = "tcp:127.0.0.1:40000"


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> float:
    """Unix seconds of a UTC wall-clock time."""
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC).timestamp()


def parse(text: bytes | str, received_at: float = RECEIVED) -> Event:
    data = text.encode() if isinstance(text, str) else text
    ev = parse_event(7, received_at, SOURCE, data)
    assert ev.id == 7
    assert ev.source == SOURCE
    assert ev.received_at == received_at
    return ev
