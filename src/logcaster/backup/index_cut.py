"""A segment's store index cut at the snapshot: only chunks the backed-up bytes hold.

The indexer appends rows and block entries, then the chunk record that commits
them, and may rewrite the last chunk in place to extend it (store/index.py).
So the chunk table is read and verified first (`load_index`: CRCs, continuity,
rows present) and the chunks kept are those ending at or below the snapshot's
last id and inside the bytes copied of the segment. Their records go into the
archive from that verified copy, never re-read; their rows and block entries
are a prefix of `.cols` and `.blocks` that later writes only append to or
rewrite with the same bytes. Chunks past the cut are left out, and the indexer
of a server started on the restored directory indexes those events again from
the segment (it continues from the last chunk's end, as after a crash).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from logcaster.store.index import BLOCKS_DTYPE, COLS_DTYPE, load_index


@dataclass(frozen=True, slots=True)
class IndexCut:
    chunks: bytes  # the kept chunk records, as verified
    cols_bytes: int  # prefix of `.cols` holding their rows
    blocks_bytes: int  # prefix of `.blocks` holding their block entries
    last_id: int | None  # of the last kept chunk


def cut_index(base: Path, last_id: int, byte_end: int | None) -> IndexCut:
    """The index at `base` (`<dir>/<first id>`, suffixes added) cut to chunks whose
    ids end at or below `last_id` and whose bytes end at or below `byte_end`
    (None: the segment was copied whole)."""
    index = load_index(base)
    keep = 0
    for rec in index.chunks:
        end_id = int(rec["first_id"]) + int(rec["count"]) - 1
        if end_id > last_id or (byte_end is not None and int(rec["byte_end"]) > byte_end):
            break
        keep += 1
    if keep == 0:
        return IndexCut(b"", 0, 0, None)
    last = index.chunks[keep - 1]
    kept_last = int(last["first_id"]) + int(last["count"]) - 1
    rows = int(last["row_start"]) + int(last["count"])
    blocks = int(np.searchsorted(index.blocks["first_id"], kept_last, side="right"))
    return IndexCut(
        index.chunks[:keep].tobytes(),
        rows * COLS_DTYPE.itemsize,
        blocks * BLOCKS_DTYPE.itemsize,
        kept_last,
    )
