"""Hyperscan's reports collected in C, where the extension is built (`_hsreports.c`).

python-hyperscan hands every report to a Python callback under the GIL: ~0.25 us
each, and two scan threads that both report wait on each other for the GIL, so a
regex matching on a few percent of lines scanned on one thread at callback speed
(store/scan_pool.py, `dense`). The extension keeps the reports in a C array while
the GIL is released and returns them at once; `Scanner.hits` uses it when it is
there and the expressions compile in it, python-hyperscan otherwise, with the
same reports either way.

The extension links the system's libhs (Debian: libhyperscan-dev), built by
`scripts/build-native` from `make`; `store.c_collector: false` turns it off
(`configure`, at the server's start).
"""

from __future__ import annotations

import threading
from typing import Protocol


class Reports(Protocol):
    def scan(self, buffer: object, lo: int, hi: int, /) -> bytes: ...

    def scan_ranges(self, buffer: object, ranges: bytes, /) -> bytes: ...


try:
    from logcaster.store._hsreports import Reports as _Reports  # type: ignore[import-not-found]
except ImportError:  # not built: python-hyperscan's callbacks
    _Reports = None

ENABLED = _Reports is not None


def built() -> bool:
    """Whether the extension is importable here (whatever store.c_collector says)."""
    return _Reports is not None


def configure(wanted: bool) -> None:
    """store.c_collector: scanners made from now on use the collector if wanted and built."""
    global ENABLED
    ENABLED = wanted and _Reports is not None


def why_off() -> str:
    """Why the collector is off, for the store's start-up log line."""
    if _Reports is None:
        return "not built (scripts/build-native: gcc and libhyperscan-dev)"
    return "store.c_collector: false"


def compile_reports(expressions: list[bytes]) -> Reports | None:
    """The expressions (as Scanner compiles them for python-hyperscan) compiled for
    the extension; None where it is not built, turned off, or refuses them."""
    if not ENABLED or _Reports is None:
        return None
    try:
        reports: Reports = _Reports(expressions)
    except (ValueError, TypeError, MemoryError):
        return None
    return reports


class LazyReports:
    """A scanner's expressions, compiled for the extension on first use (a query
    that never scans in bulk does not pay the second compile); thread-safe."""

    def __init__(self, expressions: list[bytes]) -> None:
        self._expressions = expressions
        self._lock = threading.Lock()
        self._done = not expressions
        self._reports: Reports | None = None

    def get(self) -> Reports | None:
        if not self._done:
            with self._lock:
                if not self._done:
                    self._reports = compile_reports(self._expressions)
                    self._done = True
        return self._reports
