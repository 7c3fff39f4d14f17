"""What opening a segment writer does to the directory it finds (after a crash).

`SegmentWriter` (`segments/writer.py`) calls this before it writes anything:

- `recover_active` makes active.log fit to append to. A torn tail (what a
  crash in the middle of a write leaves) is truncated. Damage in the middle (a
  corrupt block with good blocks after it) is repaired in place: the damaged
  bytes are copied to `quarantine/`, the good blocks are kept, verbatim, in
  active.log, and writing continues after the last of them
  (`segments/repair.py`). A file without one good block (another format, an
  older LogCaster's) is moved to `quarantine/` whole, never cut to nothing.
  Each is reported as a `Recovery`.
- `highest_id_on_disk` finds the id new events continue after: the highest in
  active.log, the newest rotated segments and quarantine, so no id is reused.

Errors reading or changing the files are `StorageError`s naming the file
(`scan_or_raise` for the scans the writer also needs later).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from logcaster.segments.lock import fsync_dir, storage_error
from logcaster.segments.names import (
    ACTIVE_NAME,
    QUARANTINE_DIR,
    list_rotated,
    parse_segment_name,
    segment_name,
)
from logcaster.segments.repair import (
    REPAIR_SUFFIX,
    Recovery,
    quarantine_damage,
    rewrite_good_blocks,
)
from logcaster.segments.segment import SegmentScan, scan_segment, truncate_torn_tail


def scan_or_raise(path: Path, *, keep_blocks: bool = True) -> SegmentScan:
    """`scan_segment`, with an OS error as a StorageError naming the file."""
    try:
        return scan_segment(path, keep_blocks=keep_blocks)
    except OSError as exc:
        raise storage_error("cannot read", path, exc) from exc


def recover_active(
    directory: Path, clock: Callable[[], float]
) -> tuple[SegmentScan | None, Recovery | None]:
    """Repair or quarantine active.log; its scan if it is (still) there, else None.

    Also returns what was done, or None if the file was whole (or absent).
    `clock` gives the time in quarantine names.
    """
    active_path = directory / ACTIVE_NAME
    leftover = active_path.with_name(ACTIVE_NAME + REPAIR_SUFFIX)
    with contextlib.suppress(FileNotFoundError):
        leftover.unlink()  # a repair interrupted before its rename: redone below
    if not active_path.exists():
        return None, None
    scan = scan_or_raise(active_path, keep_blocks=False)
    if scan.corruptions:
        return _repair(directory, scan, clock)
    if scan.torn_tail is not None and scan.end_of_good == 0:
        # Not one good block (a file of another format, e.g. an older
        # LogCaster's): move it aside whole, never cut it to nothing.
        first = scan.problems[0]
        target = _quarantine(directory, scan.first_id, clock)
        return None, Recovery("quarantined", active_path, first.offset, first.reason, 0, target)
    recovered = None
    if scan.torn_tail is not None:
        tail = scan.torn_tail
        try:
            cut = truncate_torn_tail(active_path, scan)
        except OSError as exc:
            raise storage_error("cannot truncate torn tail of", active_path, exc) from exc
        recovered = Recovery("torn_tail", active_path, tail.offset, tail.reason, cut)
        scan.size = scan.end_of_good
        scan.problems.clear()
    return scan, recovered


def _repair(
    directory: Path, scan: SegmentScan, clock: Callable[[], float]
) -> tuple[SegmentScan, Recovery]:
    """Damage in the middle: keep every good block, set the damaged bytes aside.

    A torn tail after it is set aside too (it is part of the same damaged
    file). Writing then continues after the last good block, as after a
    clean start: the append position is the end of the rewritten file.
    """
    path = directory / ACTIVE_NAME
    try:
        damage = quarantine_damage(path, scan, directory / QUARANTINE_DIR, clock())
        kept = rewrite_good_blocks(path)
    except OSError as exc:
        raise storage_error("cannot repair", path, exc) from exc
    first = damage[0]
    recovered = Recovery(
        "repaired", path, first.offset, first.reason, damaged=tuple(damage), kept_events=kept
    )
    return scan_or_raise(path, keep_blocks=False), recovered


def _quarantine(directory: Path, first_id: int | None, clock: Callable[[], float]) -> Path:
    active_path = directory / ACTIVE_NAME
    qdir = directory / QUARANTINE_DIR
    try:
        qdir.mkdir(exist_ok=True)
    except OSError as exc:
        raise storage_error("cannot create", qdir, exc) from exc
    name = segment_name(clock(), first_id if first_id is not None else 0)
    target = qdir / name
    n = 1
    while target.exists():
        target = qdir / name.replace(".log", f".{n}.log")
        n += 1
    try:
        os.rename(active_path, target)
    except OSError as exc:
        raise storage_error("cannot quarantine", active_path, exc) from exc
    fsync_dir(qdir)
    fsync_dir(directory)
    return target


def highest_id_on_disk(directory: Path, active_scan: SegmentScan | None) -> int | None:
    """The highest event id in active.log, the rotated segments and quarantine.

    Rotated segments hold increasing ids, so only the newest ones (by the first
    id in their names) are scanned, newest first, until one has a good block.
    Quarantined files are scanned in full: they are rare, and their ids must
    not be reused either.
    """
    best: int | None = None

    def consider(value: int | None) -> None:
        nonlocal best
        if value is not None and (best is None or value > best):
            best = value

    if active_scan is not None:
        consider(active_scan.last_id)
    for path in reversed(list_rotated(directory)):
        consider(parse_segment_name(path.name))
        last = _scan_or_none(path)
        consider(last)
        if last is not None:
            break
    qdir = directory / QUARANTINE_DIR
    if qdir.is_dir():
        for path in sorted(qdir.iterdir()):
            if path.is_file() and parse_segment_name(path.name) is not None:
                consider(_scan_or_none(path))
    return best


def _scan_or_none(path: Path) -> int | None:
    """The last id of a rotated or quarantined file; None if it has none or is unreadable.

    An unreadable file must not stop the start (no crash loop): the file sink's
    housekeeping sets it aside and reports it.
    """
    try:
        return scan_segment(path, keep_blocks=False).last_id
    except OSError:
        return None
