"""Housekeeping of rotated segments (issue 4): compression, retention, clean-up, quarantine.

`Housekeeper` is a plain, blocking library like `SegmentWriter`. The file sink
runs it in a thread, outside the write lock: it only touches rotated segments,
which the writer never writes again, so ingest goes on meanwhile. One
housekeeper per directory, one call at a time.

- `cleanup()` (at start, before the writer opens): removes leftovers of a crash
  in the middle of a compression or repair.
- `verify()` (at start): scans every rotated segment; of a damaged one
  (corruption in the middle, torn tail) only the damaged bytes are copied to
  `quarantine/` and its good blocks are rewritten under its old name, so they
  are still served. One whose damage cannot be measured (a broken gzip stream,
  unreadable, no good block) is kept whole in `quarantine/`.
- `compress_pending()`: gzips rotated `.log` files to `.log.gz`, oldest first,
  one at a time.
- `apply_retention()`: deletes the oldest rotated files beyond the limits.

Every change on disk is logged with `log_event` and returned for tests.

Crash safety of a compression: write `X.log.gz.tmp`, fsync it, rename it to
`X.log.gz`, fsync the directory, unlink `X.log`, fsync the directory. A crash at
any point leaves either no `.gz` (the tmp is deleted at the next start and the
`.log` compressed again) or a complete `.gz` (a `.log` next to it is deleted at
the next start; until then `list_rotated` lists only the `.gz`).
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from logcaster.exceptions import StorageError
from logcaster.log import log_event
from logcaster.segments.lock import fsync_dir
from logcaster.segments.names import (
    QUARANTINE_DIR,
    list_rotated,
    parse_segment_name,
    segment_time,
)
from logcaster.segments.repair import (
    REPAIR_SUFFIX,
    Damage,
    free_name,
    quarantine_damage,
    rewrite_good_blocks,
    write_good_copy,
)
from logcaster.segments.segment import BAD_GZIP, Corruption, SegmentScan, scan_segment

logger = logging.getLogger("logcaster.segments.housekeeping")

# Level 1: measured on typical log lines (10 MB), level 1 compressed at ~70-90 MB/s
# to 26.8% of the size, level 3 at ~60 MB/s to 25.1%, level 6 at ~30 MB/s to 22.4%.
# On a small machine the CPU is shared with ingest, so the fastest level wins: the
# files are 16% larger than at level 6 for less than half the CPU time.
GZIP_LEVEL = 1
_CHUNK = 1 << 20
_TMP_SUFFIXES = (".gz.tmp", REPAIR_SUFFIX)

RetentionReason = Literal["retention_files", "retention_age", "retention_bytes"]


@dataclass(frozen=True, slots=True)
class Deletion:
    path: Path
    reason: RetentionReason
    bytes: int


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A damaged rotated segment set aside; `kept_events` good events were rewritten
    under its old name (none if no good block was left).

    `damaged` lists the damaged byte ranges copied to quarantine/ (the first is
    `quarantined_to`); when they cannot be measured (a broken gzip stream, an
    unreadable file, no good block) it is empty and `quarantined_to` is a copy
    of the whole file.
    """

    path: Path
    offset: int
    reason: str
    quarantined_to: Path
    kept_events: int
    damaged: tuple[Damage, ...] = ()


class Housekeeper:
    def __init__(
        self,
        directory: Path,
        *,
        retention_files: int | None = None,
        retention_age: float | None = None,
        retention_bytes: int | None = None,
        clock: Callable[[], float] = time.time,
        on_segment_gone: Callable[[Path], None] | None = None,
    ) -> None:
        """`on_segment_gone(path)` is called (in the housekeeping thread) after a
        rotated segment was deleted, set aside or rewritten: the store drops its index."""
        self.directory = Path(directory)
        self._on_segment_gone = on_segment_gone
        self.retention_files = retention_files
        self.retention_age = retention_age
        self.retention_bytes = retention_bytes
        self._clock = clock
        # Set by the owner at shutdown: a running compression stops at its next chunk.
        self.stopping = threading.Event()

    def _gone(self, path: Path) -> None:
        if self._on_segment_gone is not None:
            self._on_segment_gone(path)

    # -- clean-up at start ----------------------------------------------------

    def cleanup(self) -> list[Path]:
        """Delete leftovers of an interrupted compression or repair; the paths removed.

        A `*.gz.tmp` or `*.repair.tmp` was never renamed into place, so the original
        is intact. A `X.log` next to `X.log.gz` was not yet unlinked after the rename:
        the `.gz` is complete (renamed only after its fsync).
        """
        removed: list[Path] = []
        names = {p.name for p in self.directory.iterdir()}
        for name in sorted(names):
            path = self.directory / name
            if name.startswith("logcaster-") and name.endswith(_TMP_SUFFIXES):
                reason = "unfinished temporary file"
            elif parse_segment_name(name) is not None and name + ".gz" in names:
                reason = "compressed copy exists"
            else:
                continue
            if not path.is_file():
                continue
            size = _size_of(path)
            path.unlink()
            removed.append(path)
            log_event(
                logger,
                logging.WARNING,
                "leftover_removed",
                path=str(path),
                reason=reason,
                bytes=size,
            )
        if removed:
            fsync_dir(self.directory)
        return removed

    # -- verification and quarantine at start ---------------------------------

    def verify(self) -> list[Quarantined]:
        """Scan every rotated segment; quarantine the damaged ones (see the module doc).

        Reads every rotated file in full (decompressing .gz): at start this costs
        about a second per few hundred MB.
        """
        done: list[Quarantined] = []
        self._report_foreign_entries()
        for path in list_rotated(self.directory):
            if self.stopping.is_set():
                break
            try:
                result = self._verify_one(path)
            except (OSError, StorageError) as exc:
                # One file that cannot be set aside (a full disk, say) must not hold
                # up the others; it is scanned again at the next start.
                log_event(
                    logger, logging.ERROR, "quarantine_failed", path=str(path), reason=str(exc)
                )
                with contextlib.suppress(OSError):
                    path.with_name(path.name + REPAIR_SUFFIX).unlink()
                continue
            if result is not None:
                done.append(result)
        return done

    def _report_foreign_entries(self) -> None:
        """An entry named like a segment that is no file (a directory) is left alone."""
        for path in sorted(self.directory.iterdir()):
            if parse_segment_name(path.name) is not None and not path.is_file():
                log_event(
                    logger, logging.WARNING, "segment_ignored", path=str(path), reason="not a file"
                )

    def _verify_one(self, path: Path) -> Quarantined | None:
        try:
            scan = scan_segment(path, keep_blocks=False)
        except OSError as exc:
            return self._quarantine(path, 0, f"unreadable: {exc.strerror or exc}", rewrite=False)
        problem = scan.problem
        if problem is None:
            return None
        reason = (
            problem.reason if isinstance(problem, Corruption) else f"torn tail: {problem.reason}"
        )
        # The rest of a broken gzip stream cannot be measured, let alone cut into
        # ranges: such a file is kept whole in quarantine/, like one without a good block.
        measurable = all(p.reason != BAD_GZIP for p in scan.problems)
        if scan.event_count > 0 and measurable:
            return self._set_damage_aside(path, scan, problem.offset, reason)
        return self._quarantine(path, problem.offset, reason, rewrite=scan.event_count > 0)

    def _set_damage_aside(
        self, path: Path, scan: SegmentScan, offset: int, reason: str
    ) -> Quarantined:
        """Copy only the damaged bytes to quarantine/, keep the good blocks under the
        same name: what the writer does for active.log (see `segments/repair.py`)."""
        damage = quarantine_damage(path, scan, self.directory / QUARANTINE_DIR, self._clock())
        kept = rewrite_good_blocks(path, gzip_level=GZIP_LEVEL)
        self._gone(path)
        return _reported(
            Quarantined(path, offset, reason, damage[0].quarantined_to, kept, tuple(damage))
        )

    def _quarantine(self, path: Path, offset: int, reason: str, *, rewrite: bool) -> Quarantined:
        """Set `path` aside in quarantine/; with `rewrite`, put its good blocks back.

        Order: write the good blocks to a tmp file and fsync it, hard-link the
        original into quarantine/ (fsync), then rename the tmp over the original
        (fsync the directory). A crash leaves the original in place (scanned again
        at the next start) or the clean copy; the quarantined copy may then exist
        twice, which costs only space.
        """
        qdir = self.directory / QUARANTINE_DIR
        qdir.mkdir(exist_ok=True)
        target = free_name(qdir / path.name)
        kept = 0
        if rewrite:
            tmp = path.with_name(path.name + REPAIR_SUFFIX)
            kept = write_good_copy(path, tmp, gzip_level=GZIP_LEVEL)
            _link_or_copy(path, target)
            fsync_dir(qdir)
            os.replace(tmp, path)
        else:
            os.replace(path, target)
            fsync_dir(qdir)
        fsync_dir(self.directory)
        self._gone(path)
        return _reported(Quarantined(path, offset, reason, target, kept))

    # -- compression ----------------------------------------------------------

    def pending_compression(self) -> list[Path]:
        """Rotated segments not yet compressed, oldest first."""
        return [p for p in list_rotated(self.directory) if not p.name.endswith(".gz")]

    def compress_pending(self) -> list[Path]:
        """Compress every rotated `.log`, one at a time; the `.gz` paths made.

        Stops early when `stopping` is set (the unfinished file stays a `.log`).
        """
        made: list[Path] = []
        for path in self.pending_compression():
            if self.stopping.is_set():
                break
            gz = self.compress(path)
            if gz is not None:
                made.append(gz)
        return made

    def compress(self, path: Path) -> Path | None:
        """Gzip one rotated segment in the crash-safe order (module doc); None if stopped."""
        gz = path.with_name(path.name + ".gz")
        tmp = path.with_name(path.name + ".gz.tmp")
        try:
            if not self._gzip_to(path, tmp):
                tmp.unlink()
                return None
            os.rename(tmp, gz)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        fsync_dir(self.directory)
        before, after = _size_of(path), _size_of(gz)
        path.unlink()
        fsync_dir(self.directory)
        log_event(
            logger,
            logging.INFO,
            "segment_compressed",
            path=str(gz),
            bytes_before=before,
            bytes_after=after,
        )
        return gz

    def _gzip_to(self, src: Path, tmp: Path) -> bool:
        """Write the gzip of `src` to `tmp` and fsync it; False if stopped on the way."""
        with open(src, "rb") as fin, open(tmp, "wb") as raw:
            # mtime=0: the same input gives the same bytes; the name is the original's.
            with gzip.GzipFile(src.name, "wb", GZIP_LEVEL, raw, mtime=0) as out:
                while chunk := fin.read(_CHUNK):
                    if self.stopping.is_set():
                        return False
                    out.write(chunk)
            raw.flush()
            os.fsync(raw.fileno())
        return True

    # -- retention ------------------------------------------------------------

    @property
    def has_retention(self) -> bool:
        return (
            self.retention_files is not None
            or self.retention_age is not None
            or self.retention_bytes is not None
        )

    def apply_retention(self) -> list[Deletion]:
        """Delete the oldest rotated files (by first id) beyond the limits; each is logged.

        Never touches active.log or quarantine/: only rotated segments are listed.
        """
        if not self.has_retention:
            return []
        files = [(p, _size_of(p)) for p in list_rotated(self.directory)]
        doomed: list[tuple[Path, RetentionReason]] = []
        if self.retention_files is not None:
            excess = len(files) - self.retention_files
            doomed += [(p, "retention_files") for p, _ in files[: max(0, excess)]]
        if self.retention_age is not None:
            now = self._clock()
            for p, _ in files:
                closed = segment_time(p.name)
                if closed is not None and now - closed > self.retention_age:
                    doomed.append((p, "retention_age"))
        if self.retention_bytes is not None:
            gone = {p for p, _ in doomed}
            total = sum(size for p, size in files if p not in gone)
            for p, size in files:
                if total <= self.retention_bytes:
                    break
                if p not in gone:
                    doomed.append((p, "retention_bytes"))
                    total -= size
        return self._delete(doomed, dict(files))

    def _delete(
        self, doomed: list[tuple[Path, RetentionReason]], sizes: dict[Path, int]
    ) -> list[Deletion]:
        deleted: list[Deletion] = []
        seen: set[Path] = set()
        # Oldest first: the order of `list_rotated` (by first id).
        order = {p: i for i, p in enumerate(sizes)}
        for path, reason in sorted(doomed, key=lambda item: order[item[0]]):
            if path in seen:
                continue
            seen.add(path)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            self._gone(path)
            deleted.append(Deletion(path, reason, sizes[path]))
            log_event(
                logger,
                logging.INFO,
                "segment_deleted",
                path=str(path),
                reason=reason,
                bytes=sizes[path],
            )
        if deleted:
            fsync_dir(self.directory)
        return deleted


def _size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _link_or_copy(src: Path, dst: Path) -> None:
    """Put a copy of `src` at `dst`: a hard link (same filesystem, no data copied)."""
    try:
        os.link(src, dst)
    except OSError:
        with open(src, "rb") as fin, open(dst, "wb") as fout:
            while chunk := fin.read(_CHUNK):
                fout.write(chunk)
            fout.flush()
            os.fsync(fout.fileno())


def _reported(result: Quarantined) -> Quarantined:
    """Log one `segment_quarantined` line for `result` (its damaged ranges when known)."""
    extra: dict[str, Any] = (
        {"damaged": [d.fields() for d in result.damaged]} if result.damaged else {}
    )
    log_event(
        logger,
        logging.WARNING,
        "segment_quarantined",
        path=str(result.path),
        offset=result.offset,
        reason=result.reason,
        quarantined_to=str(result.quarantined_to),
        kept_events=result.kept_events,
        **extra,
    )
    return result
