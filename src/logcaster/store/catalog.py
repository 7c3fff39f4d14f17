"""Where the store's files are, and which segment each index belongs to.

The store's text is the file sink's segments; its index lives beside them in
`DIR/index/`, one pair of files per segment named after the segment's first
event id (`00000000000000000001.cols` / `.chunks`), plus `services.json`.
Naming by first id rather than by file name lets the index survive the
rotation rename: `active.log` and the `logcaster-<time>-<first id>.log` it
becomes hold the same blocks, so they share one index.
"""

from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from logcaster.segments.blocks import parse_header
from logcaster.segments.names import ACTIVE_NAME, list_rotated, parse_segment_name
from logcaster.store.terms import TERM_SUFFIXES

INDEX_DIR = "index"
_FIRST_HEADER_BYTES = 512


def index_dir(directory: Path) -> Path:
    return directory / INDEX_DIR


@functools.lru_cache(maxsize=4096)
def index_base(directory: Path, first_id: int) -> Path:
    """The path the index files of the segment starting at `first_id` extend.

    Cached: a query asks it of every segment (pathlib's joins cost more than the
    stat that follows), and the answer depends on its arguments alone."""
    return index_dir(directory) / f"{first_id:020d}"


@functools.lru_cache(maxsize=4096)
def index_file(base: Path, suffix: str) -> str:
    """One index file of the segment at `base` (index_base), as a string for os.stat."""
    return f"{base}{suffix}"


@dataclass(frozen=True, slots=True)
class SegmentRef:
    first_id: int
    path: Path
    active: bool  # active.log: still being written

    @property
    def compressed(self) -> bool:
        return self.path.name.endswith(".gz")


def active_first_id(path: Path) -> int | None:
    """The first id of `active.log` from its first block header (None: empty or foreign)."""
    try:
        with open(path, "rb") as f:
            return active_first_id_of(f)
    except FileNotFoundError:
        return None


def active_first_id_of(f: BinaryIO) -> int | None:
    """The first id in the first block header of an open segment (its position is kept)."""
    head = os.pread(f.fileno(), _FIRST_HEADER_BYTES, 0)
    end = head.find(b"\n")
    header = parse_header(head[: end + 1]) if end >= 0 else None
    return header.first_id if header is not None else None


def list_segments(directory: Path) -> list[SegmentRef]:
    """Rotated segments, then active.log (if it has a block), ordered by first id."""
    refs = []
    for path in list_rotated(directory):
        first = parse_segment_name(path.name)
        assert first is not None
        refs.append(SegmentRef(first, path, active=False))
    active = directory / ACTIVE_NAME
    first = active_first_id(active)
    if first is not None and (not refs or first > refs[-1].first_id):
        refs.append(SegmentRef(first, active, active=True))
    return refs


def delete_index(directory: Path, first_id: int) -> None:
    """Remove one segment's index (retention, or a segment rewritten at start)."""
    base = index_base(directory, first_id)
    for suffix in (".cols", ".chunks", ".blocks", *TERM_SUFFIXES):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(base.with_name(base.name + suffix))
