"""glibc malloc settings for LogCaster's processes (the server, the indexer, the token process).

Their hot paths allocate and free buffers of a read's size (256 KiB: a
connection's read, the framed body, a batch's joined payload) thousands of
times a second. glibc serves an allocation from 128 KiB up with a fresh
`mmap` until a free raises its threshold, and gives the top of the heap back
to the kernel once more than twice that is free; either way the next buffer
is new pages, and every page costs a fault when first written. On the
project VM that was a fifth of the server's time at 8 connections
(`bench/ingest`; docs/performance.md). Here buffers up to `MMAP_THRESHOLD`
come from the heap and up to `TRIM_THRESHOLD` of free heap top is kept for
the next ones, so the same pages are reused.

Memory stays bounded: the heap keeps at most `TRIM_THRESHOLD` free at its
top per arena beyond what the process uses; larger buffers (a write group,
a segment's column) still get their own mapping, returned on free.

An operator's own `MALLOC_MMAP_THRESHOLD_` or `MALLOC_TRIM_THRESHOLD_`
environment variable wins (glibc reads them at start); on a C library other
than glibc nothing is changed.
"""

from __future__ import annotations

import ctypes
import os

MMAP_THRESHOLD = 4 << 20
TRIM_THRESHOLD = 32 << 20
# mallopt parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_OPERATOR_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def tune_malloc() -> bool:
    """Apply the thresholds above to this process; whether they were applied."""
    if any(name in os.environ for name in _OPERATOR_SETTINGS):
        return False
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return False
    except (ValueError, OSError):
        return False  # not glibc (musl, macOS)
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success.
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
