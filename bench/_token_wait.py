"""Wait until the store's token index (store/terms.py) covers every final chunk,
and every rotated segment has its filter of whole terms (store/segment_bloom.py).

The indexer process builds the token index after the event index, while the
server asks for nothing (store/term_indexer.py), so a benchmark that times
queries right after a load waits for it too and reports when it was done.
A final chunk is one that can no longer grow: every chunk of a rotated
segment, and active.log's chunks but a last one that is not full.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from logcaster.store.catalog import index_base, list_segments
from logcaster.store.chunks import CHUNK_BYTES
from logcaster.store.index import load_index
from logcaster.store.segment_bloom import bloom_path
from logcaster.store.term_views import load_terms

POLL_S = 0.05
STALL_S = 120.0


def missing_token_records(data_dir: Path) -> tuple[int, int]:
    """(final chunks without a token record and rotated segments without their
    filter, token records) over the data dir."""
    missing = records = 0
    for ref in list_segments(data_dir):
        if ref.compressed:
            continue
        base = index_base(data_dir, ref.first_id)
        chunks = load_index(base).chunks
        final = len(chunks)
        if ref.active and final:
            last = chunks[-1]
            if int(last["byte_end"]) - int(last["byte_start"]) < CHUNK_BYTES:
                final -= 1
        have = len(load_terms(base).records)
        records += have
        # The filter is renamed into place whole: being there is being written.
        missing += max(0, final - have) + (not ref.active and not bloom_path(base).exists())
    return missing, records


def wait_token_index(data_dir: Path, check: Callable[[], None]) -> tuple[float, int]:
    """Block until no final chunk lacks a token record: (when, as time.perf_counter(),
    the last record appeared; records). Raises TimeoutError on a stall."""
    last: tuple[int, int] | None = None
    changed = time.perf_counter()
    while True:
        check()
        state = missing_token_records(data_dir)
        now = time.perf_counter()
        if state != last:
            last, changed = state, now
        if state[0] == 0:
            return changed, state[1]
        if now - changed > STALL_S:
            raise TimeoutError(f"the token index stalled with {state[0]} chunks missing")
        time.sleep(POLL_S)
