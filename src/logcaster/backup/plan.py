"""What one tree contributes to the archive, cut consistently (docs/backup.md).

For each segment directory (one holding active.log or rotated segments: the
data directory, a forward spool, quarantine/) the cut is taken when active.log
is pinned, first: its size then, after an fsync of it, bounds the snapshot, and
it is cut at the last whole, CRC-valid block within that size (that block's
last id is the directory's snapshot id). Rotated segments are kept when they
were rotated before that moment: first id below active.log's (or, with an
empty active.log, a rotation time in the name before it). A segment rotated,
compressed or deleted during the backup cannot change what was pinned, and
one rotated after the cut holds only later ids, so it is left out.

The directory is listed three times (once before the cut, twice after) and the
union pinned: a listing can miss a name being renamed at that moment, never
the same one in two listings. Of two names for one inode (a file renamed
between listings) the newer is kept.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from logcaster.backup.index_cut import cut_index
from logcaster.backup.manifest import RESTORED_DIR
from logcaster.backup.pin import BackupError, Pinned, Staging, walk
from logcaster.backup.sources import Tree
from logcaster.segments.names import ACTIVE_NAME, parse_segment_name, segment_time
from logcaster.segments.segment import iter_raw_blocks, scan_segment
from logcaster.store.catalog import INDEX_DIR
from logcaster.store.indexer import SERVICES_NAME

# The token index (.terms, .tposts, .tchunks, .sbloom) is left out: derived data
# the indexer rebuilds, and not cut at the snapshot like the rest.
_INDEX_FILE = re.compile(r"(\d{20})\.(cols|chunks|blocks|terms|tposts|tchunks|sbloom)")
# Appended JSON lines (dead letters, the audit log): copied up to the last whole line.
_LINE_FILES = re.compile(r".*\.ndjson|audit\.log")
_TAIL_STEP = 64 * 1024


@dataclass(frozen=True, slots=True)
class Member:
    """One archive member: `size` bytes from `link`, or `data`."""

    name: str
    size: int
    mode: int
    mtime: float
    link: Path | None = None
    data: bytes | None = None


@dataclass(frozen=True, slots=True)
class ActiveCut:
    pinned: Pinned | None
    at: float  # time.time() just before it was pinned
    first_id: int | None
    end: int  # bytes of whole blocks
    last_id: int | None


def cut_active(pinned: Pinned | None, at: float) -> ActiveCut:
    """active.log made durable up to its pinned size, cut at its last whole block."""
    if pinned is None:
        return ActiveCut(None, at, None, 0, None)
    fd = os.open(pinned.link, os.O_RDONLY)
    try:
        os.fsync(fd)  # the same inode: every byte up to the pinned size is now durable
    finally:
        os.close(fd)
    first = last = None
    end = 0
    for block in iter_raw_blocks(pinned.link, end=pinned.size):
        header = block.header
        first = header.first_id if first is None else first
        last = header.first_id + header.count - 1
        end = block.payload_offset + len(block.payload)
    return ActiveCut(pinned, at, first, end, last)


def whole_lines(path: Path, size: int) -> int:
    """Bytes of `path` up to its last newline within `size` (read backwards, bounded)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        pos = size
        while pos > 0:
            start = max(0, pos - _TAIL_STEP)
            i = os.pread(fd, pos - start, start).rfind(b"\n")
            if i >= 0:
                return start + i + 1
            pos = start
        return 0
    finally:
        os.close(fd)


def _parent(rel: str) -> str:
    return rel.rpartition("/")[0]


def _base(rel: str) -> str:
    return rel.rpartition("/")[2]


def _join(directory: str, name: str) -> str:
    return f"{directory}/{name}" if directory else name


class TreePlan:
    """Pins one tree (`pin`), then yields its members (`members`)."""

    def __init__(self, tree: Tree, staging: Staging) -> None:
        self.tree = tree
        self.staging = staging
        self.actives: dict[str, ActiveCut] = {}
        self.pinned: dict[str, Pinned] = {}
        self.snapshot_ids: dict[str, int | None] = {}  # per segment directory

    def _walk(self) -> list[str]:
        """The tree's files; of the data directory, without `restored/`: a restore's
        by-products, which would be restored onto the next restore's own."""
        listed = walk(self.tree.root)
        if self.tree.name != "data":
            return listed
        return [rel for rel in listed if not rel.startswith(RESTORED_DIR + "/")]

    def pin(self) -> None:
        first = self._walk()
        dirs: set[str] = set()
        if self.tree.segments:
            dirs = {""} | {
                _parent(rel)
                for rel in first
                if _base(rel) == ACTIVE_NAME or parse_segment_name(_base(rel)) is not None
            }
        for d in sorted(dirs):
            at = time.time()
            self.actives[d] = cut_active(self.staging.pin(_join(d, ACTIVE_NAME)), at)
        for listing in (first, self._walk(), self._walk()):
            for rel in listing:
                if rel in self.pinned or (_base(rel) == ACTIVE_NAME and _parent(rel) in dirs):
                    continue
                pinned = self.staging.pin(rel)
                if pinned is None and rel.endswith(".log"):
                    # Compressed since it was listed: the .gz is complete.
                    pinned = self.staging.pin(rel + ".gz")
                if pinned is not None:
                    self.pinned[pinned.rel] = pinned

    def _segments(self, d: str) -> list[tuple[int, Pinned]]:
        """The rotated segments of directory `d` inside the cut, by first id."""
        found: dict[str, tuple[int, Pinned]] = {}
        for rel, p in self.pinned.items():
            first = parse_segment_name(_base(rel))
            if _parent(rel) != d or first is None:
                continue
            stem = rel.removesuffix(".gz")
            if stem not in found or rel.endswith(".gz"):
                found[stem] = (first, p)
        active = self.actives[d]
        kept = []
        for first, p in sorted(found.values(), key=lambda item: (item[0], item[1].rel)):
            if active.pinned is not None and p.inode == active.pinned.inode:
                continue  # active.log itself, rotated after the cut
            if active.first_id is not None:
                inside = first < active.first_id
            else:
                stamp = segment_time(_base(p.rel).removesuffix(".gz"))
                inside = stamp is not None and stamp < active.at
            if inside:
                kept.append((first, p))
        return kept

    def members(self) -> Iterator[Member]:
        prefix = self.tree.name + "/"
        used: set[str] = set()
        index_of: dict[int, tuple[int, int | None]] = {}  # first id -> (last id, byte end)
        for d, active in sorted(self.actives.items()):
            kept = self._segments(d)
            snapshot = active.last_id
            if snapshot is None and kept:
                snapshot = scan_segment(kept[-1][1].link, keep_blocks=False).last_id
            self.snapshot_ids[f"{self.tree.name}/{d}".rstrip("/")] = snapshot
            for first, p in kept:
                used.add(p.rel)
                if d == "" and snapshot is not None:
                    index_of[first] = (snapshot, None if p.rel.endswith(".gz") else p.size)
                yield Member(prefix + p.rel, p.size, p.mode, p.mtime, link=p.link)
            if active.pinned is not None and active.end > 0:
                p = active.pinned
                if d == "" and active.first_id is not None and active.last_id is not None:
                    index_of[active.first_id] = (active.last_id, active.end)
                yield Member(prefix + p.rel, active.end, p.mode, p.mtime, link=p.link)
            used.update(p.rel for _, p in self._all_segments(d))
        if self.tree.name == "data":
            yield from self._index(prefix, index_of, used)
        yield from self._generic(prefix, used)
        if self.tree.name == "data":
            yield from self._services(prefix)

    def _all_segments(self, d: str) -> list[tuple[int, Pinned]]:
        """Every rotated segment pinned in `d`, inside the cut or not."""
        out = []
        for rel, p in self.pinned.items():
            first = parse_segment_name(_base(rel))
            if _parent(rel) == d and first is not None:
                out.append((first, p))
        return out

    def _index(
        self, prefix: str, index_of: dict[int, tuple[int, int | None]], used: set[str]
    ) -> Iterator[Member]:
        bases: set[int] = set()
        for rel in self.pinned:
            m = _INDEX_FILE.fullmatch(_base(rel))
            if _parent(rel) == INDEX_DIR and m is not None:
                used.add(rel)  # an index is copied cut, or not at all
                bases.add(int(m[1]))
        for first in sorted(bases & index_of.keys()):
            last_id, byte_end = index_of[first]
            name = f"{first:020d}"
            cut = cut_index(self.staging.tree / INDEX_DIR / name, last_id, byte_end)
            chunks = self.pinned.get(f"{INDEX_DIR}/{name}.chunks")
            if not cut.chunks or chunks is None:
                continue
            yield Member(
                f"{prefix}{INDEX_DIR}/{name}.chunks",
                len(cut.chunks),
                chunks.mode,
                chunks.mtime,
                data=cut.chunks,
            )
            for suffix, size in ((".cols", cut.cols_bytes), (".blocks", cut.blocks_bytes)):
                p = self.pinned.get(f"{INDEX_DIR}/{name}{suffix}")
                if p is None or size == 0:
                    continue
                # The pinned size may predate the chunk records read since; the rows
                # they commit were written before them, into the same inode.
                if os.stat(p.link).st_size < size:
                    raise BackupError(f"{self.tree.root / p.rel} shrank during the backup")
                yield Member(prefix + p.rel, size, p.mode, p.mtime, link=p.link)

    def _generic(self, prefix: str, used: set[str]) -> Iterator[Member]:
        services = f"{INDEX_DIR}/{SERVICES_NAME}"
        seen: set[tuple[int, int]] = set()
        # Newest pin first: of two names of one inode (renamed between listings),
        # the newer one is kept.
        for rel, p in reversed(self.pinned.items()):
            if rel in used or (self.tree.name == "data" and rel == services):
                continue
            if p.inode in seen:
                continue
            seen.add(p.inode)
            size = whole_lines(p.link, p.size) if _LINE_FILES.fullmatch(_base(rel)) else p.size
            yield Member(prefix + rel, size, p.mode, p.mtime, link=p.link)

    def _services(self, prefix: str) -> Iterator[Member]:
        """The service dictionary, pinned last: it only grows, and is saved before any
        row using a new code, so the one read after the rows covers them all."""
        rel = f"{INDEX_DIR}/{SERVICES_NAME}"
        p = self.staging.pin(rel, as_name=rel + ".last")
        if p is not None:
            yield Member(prefix + rel, p.size, p.mode, p.mtime, link=p.link)
