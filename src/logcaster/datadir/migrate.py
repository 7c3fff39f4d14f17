"""`logcaster migrate DIR`: bring a data directory to the current format (v3).

Steps, each safe to interrupt (docs/data-format.md, "Upgrading"):

1. Take the directory's lock (and the index's, which an indexer a killed
   server left running may still hold): a directory a server uses is refused.
2. Remove `*.migrating` files a killed run left behind.
3. Rewrite every `#LC1` segment as `#LC2` (convert.py: beside, fsync, rename).
4. Remove the store's index files: an index written before v3 carries no
   version, and one from before the block table (index format 1) cannot be
   told apart from a current one, so it is rebuilt from the segments, which
   the server does by itself at start. Then mark `index/FORMAT`.
5. Mark each forward spool (`forward/<group>/spool/FORMAT`); its files did not
   change.
6. Write `DIR/FORMAT` last: until then the directory still reads as the old
   format, so the server refuses it and a rerun does what is left.

Nothing is held per event: a segment streams block by block. `dry_run` reads
and reports the same steps and writes nothing (not even the lock file).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from logcaster.datadir.convert import TMP_SUFFIX, convert_segment
from logcaster.datadir.marker import MARKER_NAME, read_marker, write_marker
from logcaster.datadir.versions import (
    CURRENT,
    FORMAT_KEY,
    INDEX_FORMAT,
    LC1_MAGIC,
    SPOOL_FORMAT,
    detect,
    magic_of,
    segment_files,
)
from logcaster.exceptions import LogCasterError
from logcaster.segments.lock import LOCK_NAME, DataDirLock, DataDirLocked, lock_holder

# Test hook: the process kills itself (SIGKILL, like kill -9) after converting
# this many segment files, so a test can interrupt a migration at a known point.
KILL_AFTER_ENV = "LOGCASTER_TEST_MIGRATE_KILL_AFTER"

Say = Callable[[str], None]


class MigrateError(LogCasterError):
    """Why a directory cannot be migrated (one line; the command exits 2)."""


def migrate(directory: Path, *, dry_run: bool, say: Say) -> None:
    """Upgrade `directory` to format CURRENT, reporting each step through `say`."""
    if not directory.is_dir():
        raise MigrateError(f"{directory}: no such directory")
    found = _detect(directory)
    if found is not None and found >= CURRENT:
        if found > CURRENT:
            raise MigrateError(
                f"{directory} is format v{found}, newer than v{CURRENT} which this version "
                "reads: a directory is never downgraded"
            )
        say(f"{directory}: already at v{CURRENT}; nothing to do")
        return
    if found is None:
        raise MigrateError(
            f"{directory}: not a LogCaster data directory (no segments, index or spool); "
            "a server marks a new directory itself"
        )
    locks: list[DataDirLock] = []
    try:
        if dry_run:
            holder = lock_holder(directory)  # a probe: the dry run writes no lock file
            if holder is not None:
                raise DataDirLocked(directory, holder or None)
            _run(directory, found, dry_run=True, say=say)
            return
        locks.append(DataDirLock(directory).acquire())
        if (directory / "index").is_dir():
            locks.append(DataDirLock(directory / "index").acquire())
        found = _detect(directory)  # again, now that nobody else can change it
        if found is None or found >= CURRENT:
            say(f"{directory}: already at v{CURRENT}; nothing to do")
            return
        _run(directory, found, dry_run=False, say=say)
    except DataDirLocked as exc:
        raise MigrateError(f"{exc}: stop the server first") from None
    except MigrateError:
        raise
    except LogCasterError as exc:  # StorageError: a marker, a lock file, a segment
        raise MigrateError(str(exc)) from None
    except OSError as exc:
        raise MigrateError(f"{exc.filename or directory}: {exc.strerror or exc}") from None
    finally:
        for lock in reversed(locks):
            lock.release()


def _detect(directory: Path) -> int | None:
    try:
        return detect(directory).version
    except (LogCasterError, OSError) as exc:
        raise MigrateError(str(exc)) from None


def _run(directory: Path, found: int, *, dry_run: bool, say: Say) -> None:
    would = "would " if dry_run else ""
    say(f"{directory}: format v{found} -> v{CURRENT}{' (dry run: nothing is written)' * dry_run}")
    for leftover in sorted(directory.glob("*" + TMP_SUFFIX)):
        say(f"  {would}remove {leftover.name} (left by an interrupted migration)")
        if not dry_run:
            leftover.unlink()
    _segments(directory, dry_run=dry_run, say=say)
    _index(directory, dry_run=dry_run, say=say)
    _spools(directory, dry_run=dry_run, say=say)
    say(f"  {would}write {MARKER_NAME}: format v{CURRENT}")
    if not dry_run:
        write_marker(directory, FORMAT_KEY, CURRENT)
        say(f"{directory}: now at v{CURRENT}")


def _segments(directory: Path, *, dry_run: bool, say: Say) -> None:
    would = "would " if dry_run else ""
    kill_after = int(os.environ.get(KILL_AFTER_ENV, "0") or 0)
    old = [path for path in segment_files(directory) if magic_of(path) == LC1_MAGIC]
    if not old:
        say("  segments: none in #LC1; nothing to rewrite")
    for converted, path in enumerate(old, 1):
        done = convert_segment(path, dry_run=dry_run)
        stamp = datetime.fromtimestamp(done.received, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        say(
            f"  {would}rewrite {path.name}: {done.blocks} blocks, {done.events} events, "
            f"#LC1 -> #LC2 (receive time {stamp}, the file's mtime; source -)"
        )
        if done.damaged_bytes:
            say(
                f"    {done.damaged_bytes} damaged bytes skipped; {would}keep the original "
                f"as {done.kept.relative_to(directory) if done.kept else '-'}"
            )
        if not dry_run and kill_after and converted >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)


def _index(directory: Path, *, dry_run: bool, say: Say) -> None:
    would = "would " if dry_run else ""
    index = directory / "index"
    if not index.is_dir():
        say("  index: none (the server builds it from the segments)")
        return
    files = sorted(
        p for p in index.iterdir() if p.is_file() and p.name not in (LOCK_NAME, MARKER_NAME)
    )
    say(
        f"  index: {would}remove {len(files)} files (an index without a version; "
        "the server rebuilds it from the segments at start)"
    )
    if dry_run:
        return
    for path in files:
        path.unlink()
    write_marker(index, "index", INDEX_FORMAT)


def _spools(directory: Path, *, dry_run: bool, say: Say) -> None:
    would = "would " if dry_run else ""
    forward = directory / "forward"
    spools = sorted(p for p in forward.glob("*/spool") if p.is_dir()) if forward.is_dir() else []
    for spool in spools:
        if read_marker(spool, "spool") is not None:
            continue
        say(f"  {would}mark spool {spool.relative_to(directory)}: spool format {SPOOL_FORMAT}")
        if not dry_run:
            write_marker(spool, "spool", SPOOL_FORMAT)
