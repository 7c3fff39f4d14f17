"""Keep every good block of a damaged segment; set only the damaged bytes aside.

Used at start for active.log (`SegmentWriter`, which reports what it did as a
`Recovery`) and, for the verbatim copy of good blocks, by the housekeeping of
rotated segments. Nothing here decides *when* to repair; it only does it in a
crash-safe order:

1. each damaged byte range (a corruption in the middle, a torn tail after it)
   is copied to `quarantine/<file>.<UTC stamp>.at-<offset>.damaged` and
   fsynced, so a person can look at exactly what was set aside;
2. the good blocks are copied verbatim (header line and payload as stored, so
   receive time, source, mode and checksum are kept) to `<file>.repair.tmp`,
   fsynced, and renamed over the original; the directory is fsynced.

A crash before the rename leaves the original in place (the next start does
it again; the copies of step 1 may then exist twice, which costs only
space), and a leftover `.repair.tmp` that the owner deletes at start.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal

from logcaster.segments.lock import fsync_dir
from logcaster.segments.segment import Corruption, SegmentScan, iter_good_block_bytes

REPAIR_SUFFIX = ".repair.tmp"
DAMAGED_SUFFIX = ".damaged"
_DAMAGED_RE = re.compile(r"(.+)\.(\d{8}T\d{6}\.\d{6}Z)\.at-(\d+)\.damaged(?:\.\d+)?")
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Damage:
    """`bytes` damaged bytes at `offset` of a file, copied to `quarantined_to`."""

    offset: int
    bytes: int
    reason: str
    quarantined_to: Path

    def fields(self) -> dict[str, object]:
        """For a log line."""
        return {
            "offset": self.offset,
            "bytes": self.bytes,
            "reason": self.reason,
            "quarantined_to": str(self.quarantined_to),
        }


@dataclass(frozen=True, slots=True)
class Recovery:
    """What opening the writer found wrong with active.log and did about it.

    `kind` is "torn_tail" (the last `torn_bytes` bytes were cut off),
    "repaired" (damage in the middle, the first at `offset`: every damaged range
    is in `damaged`, copied to quarantine/, and the `kept_events` events of the
    good blocks stay in active.log) or "quarantined" (not one good block: the
    whole file was moved to `quarantined_to`).
    """

    kind: Literal["torn_tail", "repaired", "quarantined"]
    path: Path
    offset: int
    reason: str
    torn_bytes: int = 0
    quarantined_to: Path | None = None
    damaged: tuple[Damage, ...] = ()
    kept_events: int = 0

    def fields(self) -> dict[str, Any]:
        """For a log line."""
        fields: dict[str, Any] = {
            "kind": self.kind,
            "path": str(self.path),
            "offset": self.offset,
            "reason": self.reason,
            "torn_bytes": self.torn_bytes,
            "quarantined_to": str(self.quarantined_to or ""),
        }
        if self.kind == "repaired":
            fields["damaged"] = [d.fields() for d in self.damaged]
            fields["kept_events"] = self.kept_events
        return fields


def damaged_name(file_name: str, offset: int, timestamp: float) -> str:
    """The quarantine name of the damaged bytes at `offset` of `file_name`."""
    stamp = datetime.fromtimestamp(timestamp, UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{file_name}.{stamp}.at-{offset}{DAMAGED_SUFFIX}"


def parse_damaged_name(name: str) -> tuple[str, int] | None:
    """(file name, offset) from a `damaged_name`, or None if `name` is not one."""
    m = _DAMAGED_RE.fullmatch(name)
    return (m[1], int(m[3])) if m else None


def damaged_ranges(scan: SegmentScan) -> list[tuple[int, int, str]]:
    """(offset, length, reason) of every damaged range the scan found, in file order.

    A corruption spans up to the next good block, a torn tail to the end of the
    file. Everything else in the file is a good block.
    """
    ranges = []
    for p in scan.problems:
        if isinstance(p, Corruption):
            ranges.append((p.offset, p.skipped, p.reason))
        else:
            ranges.append((p.offset, p.bytes_after, f"torn tail: {p.reason}"))
    return ranges


def _open(path: Path) -> BinaryIO:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def free_name(path: Path) -> Path:
    """`path`, or `<path>.<n>` for the first n not taken."""
    n = 1
    target = path
    while target.exists():
        target = path.with_name(f"{path.name}.{n}")
        n += 1
    return target


def quarantine_damage(path: Path, scan: SegmentScan, qdir: Path, timestamp: float) -> list[Damage]:
    """Copy each damaged range of `path` (see `damaged_ranges`) into `qdir`, fsynced."""
    qdir.mkdir(exist_ok=True)
    done: list[Damage] = []
    with _open(path) as src:
        for offset, length, reason in damaged_ranges(scan):
            target = free_name(qdir / damaged_name(path.name, offset, timestamp))
            src.seek(offset)
            left = length
            with open(target, "wb") as out:
                while left > 0 and (chunk := src.read(min(left, _CHUNK))):
                    out.write(chunk)
                    left -= len(chunk)
                out.flush()
                os.fsync(out.fileno())
            done.append(Damage(offset, length, reason, target))
    if done:
        fsync_dir(qdir)
    return done


def write_good_copy(src: Path, tmp: Path, *, gzip_level: int = 1) -> int:
    """Write the good blocks of `src` verbatim to `tmp` (gzip if `src` is), fsync.

    Returns the number of events kept.
    """
    events = 0
    with open(tmp, "wb") as raw:
        write: Callable[[bytes], object] = raw.write
        with (
            gzip.GzipFile(src.name, "wb", gzip_level, raw, mtime=0)
            if src.name.endswith(".gz")
            else contextlib.nullcontext()
        ) as gz:
            if gz is not None:
                write = gz.write
            for info, data in iter_good_block_bytes(src):
                write(data)
                events += info.count
        raw.flush()
        os.fsync(raw.fileno())
    return events


def rewrite_good_blocks(path: Path, *, gzip_level: int = 1) -> int:
    """Replace `path` by its good blocks (crash-safe order above); events kept."""
    tmp = path.with_name(path.name + REPAIR_SUFFIX)
    try:
        kept = write_good_copy(path, tmp, gzip_level=gzip_level)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)
    return kept
