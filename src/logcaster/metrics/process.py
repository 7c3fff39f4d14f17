"""The server process itself: its memory (the seed's name) and its version.

prometheus_client's process collector adds CPU time, file descriptors and
the same resident memory as `process_resident_memory_bytes`; seed 003's
dashboards read `memory_usage_mb`, which becomes `logcaster_memory_usage_bytes`
(promtool rejects abbreviated units) with the resident set size in bytes.
"""

from __future__ import annotations

import os

from logcaster import __version__
from logcaster.metrics.registry import Metric, Readings

MEMORY = Metric(
    "memory_usage_bytes", "gauge", "Resident memory of the server process (RSS), in bytes"
)
BUILD = Metric("build_info", "gauge", "Always 1; the server's version as a label", ("version",))

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes() -> int | None:
    """The resident set size from /proc (Linux); None where there is none."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


def process_readings(out: Readings) -> None:
    rss = resident_bytes()
    if rss is not None:
        out.add(MEMORY, rss)
    out.add(BUILD, 1, __version__)
