"""Shared helpers for the segments+sidecar prototype."""
from __future__ import annotations
import os
from logcaster.pipeline.framing import LineFramer
from logcaster.config import MultilineConfig

CORPUS = os.environ.get("CORPUS", "/work/corpus/corpus-5M.log")
STORE = "/work/engines/segments/store"
RECEIVED = 1768867200.0  # fixed receive time (2026-01-20T00:00Z) so truth and index agree
LEVELS = (None, "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
LEVEL_CODE = {l: i for i, l in enumerate(LEVELS)}
FEED = 1 << 20


def framed_batches(path=CORPUS, feed=FEED):
    """Yield lists of event texts, one list per 1 MiB fed (the framer's natural batch)."""
    fr = LineFramer(64 * 1024, MultilineConfig())
    with open(path, "rb") as f:
        while True:
            data = f.read(feed)
            if not data:
                break
            out = fr.feed(data)
            if out:
                yield out
    out = fr.close()
    if out:
        yield out
