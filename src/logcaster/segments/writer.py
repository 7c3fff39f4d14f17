"""Synchronous segment writer with rotation (issue 4, step 2).

`SegmentWriter` owns `<directory>/active.log` and the rotated segments next to
it (`logcaster-<UTC timestamp>-<first id, 20 digits>.log`). It is a plain,
blocking library: the file sink will run it in its writer thread.

- Writes go through a raw file descriptor (`os.open` with O_APPEND, `os.writev`
  in a loop for partial writes): nothing is held in a user-space buffer.
- `write_many` encodes all its blocks and writes them with one `os.writev`
  call per file (per IOV_MAX buffers; a rotation in between splits it), then
  fsyncs at most once according to the policy. A block never spans two files.
- `durable_id` is the highest event id known durable: after an fsync, or with
  `fsync="never"` after the write itself.
- Consistency after errors: the writer tracks the end offset of its last
  successful write. Before each write it compares the file's size with it
  (one `fstat`); a larger file holds a torn block from a failed write (or bytes
  someone else appended) and is truncated back to the good end first, so a
  retry never leaves garbage between blocks. A smaller file was cut by someone
  else: the writer rescans it and continues after its last good block.
- Time rotation (`rotate_interval`: "hourly", "daily" or N seconds) happens at
  UTC-aligned period boundaries: before a write, or from the caller's timer
  through `rotate_if_due`, when active.log got its first data in an earlier
  period than now.
- Opening recovers from a crash (`segments/recovery.py`): a torn tail of
  active.log is truncated, damage in the middle is repaired in place, a file
  without one good block is moved to `quarantine/` whole; each is reported in
  `recovered`. Writing continues after the highest id on disk.

File names and the listing of rotated segments are `segments/names.py`'s.
"""

from __future__ import annotations

import contextlib
import errno as errno_mod
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from logcaster.exceptions import StorageError

# The module, not its names: pipeline/batch.py imports segments.blocks, so when it
# is imported first this runs (from segments/__init__) while it is half-made.
from logcaster.pipeline import batch as pipeline_batch
from logcaster.segments.blocks import Mode, encode_block_parts, encode_header
from logcaster.segments.lock import fsync_dir, make_directory, storage_error
from logcaster.segments.names import ACTIVE_NAME, list_rotated, segment_name
from logcaster.segments.recovery import highest_id_on_disk, recover_active, scan_or_raise
from logcaster.segments.repair import Recovery
from logcaster.segments.segment import SegmentScan

FsyncPolicy = Literal["always", "interval", "never"]
RotateInterval = Literal["hourly", "daily"] | int

DEFAULT_MAX_BYTES = 100 * 1024 * 1024

_PERIOD_SECONDS = {"hourly": 3600, "daily": 86400}

# Buffers per writev call (the POSIX minimum of IOV_MAX is 16; Linux allows 1024).
IOV_MAX = max(16, min(os.sysconf("SC_IOV_MAX"), 1024))


def rotation_period(timestamp: float, interval: RotateInterval) -> int:
    """The number of the rotation period holding `timestamp`.

    Unix time counts no leap seconds, so whole multiples of 3600 and 86400 are
    exactly the UTC hour and day boundaries.
    """
    seconds = _PERIOD_SECONDS[interval] if isinstance(interval, str) else interval
    return int(timestamp // seconds)


def write_all(fd: int, parts: Sequence[bytes]) -> None:
    """Write `parts` in order with `os.writev`, at most IOV_MAX buffers per call,
    resuming after a short write: no joined copy of the group is made."""
    i, n = 0, len(parts)
    rest: bytes | memoryview | None = None  # what a short write left of parts[i]
    while i < n:
        chunk = [parts[i] if rest is None else rest, *parts[i + 1 : i + IOV_MAX]]
        written = os.writev(fd, chunk)
        if written <= 0:  # pragma: no cover - writev raises rather than return 0
            raise OSError(errno_mod.EIO, "short write")
        rest = None
        for buf in chunk:
            if written < len(buf):
                rest = memoryview(buf)[written:]
                break
            written -= len(buf)
            i += 1


class SegmentWriter:
    """Appends blocks to `directory/active.log`, rotating by size or on request."""

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        fsync: FsyncPolicy = "interval",
        fsync_interval: float = 0.2,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        rotate_interval: RotateInterval | None = None,
    ) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be > 0")
        if fsync not in ("always", "interval", "never"):
            raise ValueError(f"fsync must be always, interval or never, not {fsync!r}")
        if isinstance(rotate_interval, str):
            if rotate_interval not in _PERIOD_SECONDS:
                raise ValueError(
                    f"rotate_interval must be hourly, daily or seconds, not {rotate_interval!r}"
                )
        elif rotate_interval is not None and rotate_interval < 1:
            raise ValueError("rotate_interval must be >= 1 second")
        self.directory = Path(directory)
        self.active_path = self.directory / ACTIVE_NAME
        self.max_bytes = max_bytes
        self.fsync_policy: FsyncPolicy = fsync
        self.fsync_interval = fsync_interval
        self.rotate_interval = rotate_interval
        self._clock = clock
        self._monotonic = monotonic

        self.fsyncs = 0  # fsyncs of data files (not of the directory), for tests and stats
        self.rotations = 0
        self.recovered: Recovery | None = None
        self.last_id: int | None = None  # highest id in any segment, or written since
        self.durable_id: int | None = None  # highest id known durable
        self._fd: int | None = None
        self._end = 0  # offset after the last good block of active.log
        self._active_first_id: int | None = None  # of active.log's first block
        self._active_since: float | None = None  # clock() when active.log got its first data
        self._unsynced = False
        self._last_fsync = monotonic()
        self._closed = False

        make_directory(self.directory)
        active_scan, self.recovered = recover_active(self.directory, self._clock)
        self.last_id = highest_id_on_disk(self.directory, active_scan)
        # Everything found on disk at start is treated as durable: it survived.
        self.durable_id = self.last_id
        self._open_active(active_scan)

    # -- opening --------------------------------------------------------------

    def _open_active(self, scan: SegmentScan | None = None) -> None:
        path = self.active_path
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise storage_error("cannot open", path, exc) from exc
        try:
            size = os.fstat(fd).st_size
        except OSError as exc:
            os.close(fd)
            raise storage_error("cannot stat", path, exc) from exc
        self._fd = fd
        self._end = size
        if size:
            if scan is None or scan.size != size:
                scan = scan_or_raise(path, keep_blocks=False)
            self._active_first_id = scan.first_id
            # The first write time of a file from before the restart is unknown. Its
            # last write (mtime) is a bound: a file last written in an earlier period
            # is rotated at once; otherwise rotation may come up to one period late.
            self._active_since = min(self._clock(), self._mtime(fd))
            self._end = scan.end_of_good
        else:
            self._active_first_id = None
            self._active_since = None
        fsync_dir(self.directory)

    def _mtime(self, fd: int) -> float:
        try:
            return os.fstat(fd).st_mtime
        except OSError as exc:
            raise storage_error("cannot stat", self.active_path, exc) from exc

    # -- writing --------------------------------------------------------------

    def write(
        self,
        first_id: int,
        texts: list[bytes],
        *,
        received: float = 0.0,
        source: str = "",
        mode: Mode = "raw",
    ) -> None:
        """Append one block holding events `first_id ..`; see `write_many`."""
        self.write_many([pipeline_batch.Batch(first_id, received, source, texts)], mode=mode)

    def write_many(
        self,
        batches: Sequence[pipeline_batch.Batch | tuple[int, list[bytes]]],
        *,
        mode: Mode = "raw",
    ) -> None:
        """Append one block per batch, in one write per file, then fsync per policy.

        A block records the batch's receive time and source (a `(first_id, texts)`
        pair has neither: 0 and ""), and `mode` says how its lines are encoded.
        Ids must increase: each batch's first id must be above every id written
        before (ValueError otherwise, before anything is written). Raises
        StorageError on an OS error. The failed file's torn bytes are cut off (now,
        or before the next write), so the caller retries the batches whose ids are
        above `last_id`: when a rotation split the call, the part before it may
        already be written.
        """
        if not batches:
            return
        blocks: list[tuple[int, int, bytes, bytes]] = []  # first_id, last_id, header, payload
        prev = self.last_id
        for item in batches:
            if isinstance(item, pipeline_batch.Batch):
                first_id, count = item.first_id, len(item)
                received, source = item.received_at, item.source
                # A batch the framer made as a raw payload is written as it is.
                escaped = item.payload if mode == "raw" else None
                texts = item.texts if escaped is None else []
                # Parsed events for JSON mode: the batch's cached ones if a reader on
                # the event loop made them, else parsed here without touching the cache.
                events = item.cached_events
            else:
                (first_id, texts), received, source, events = item, 0.0, "", None
                count, escaped = len(texts), None
            if prev is not None and first_id <= prev:
                raise ValueError(f"first_id {first_id} is not above the last id written {prev}")
            if escaped is not None and count:
                payload = escaped
                header = encode_header(first_id, count, payload, received=received, source=source)
            else:
                header, payload = encode_block_parts(
                    first_id, texts, received=received, source=source, mode=mode, events=events
                )
            last = first_id + count - 1
            blocks.append((first_id, last, header, payload))
            prev = last

        # A batch arriving in a new period goes to a new file, not the old one.
        self.rotate_if_due()
        self._check_end()
        parts: list[bytes] = []
        pending = 0  # bytes in parts
        pending_first: int | None = None  # first id of the first block in parts
        pending_last: int | None = None
        for first_id, last, header, payload in blocks:
            size = len(header) + len(payload)
            used = self._end + pending
            if used and used + size > self.max_bytes:
                if parts:
                    self._append(parts, pending, pending_first, pending_last)
                    parts, pending, pending_first = [], 0, None
                self.rotate()
            parts.append(header)
            parts.append(payload)
            pending += size
            if pending_first is None:
                pending_first = first_id
            pending_last = last
        if parts:
            self._append(parts, pending, pending_first, pending_last)
        if self.fsync_policy == "always" or (
            self.fsync_policy == "interval"
            and self._monotonic() - self._last_fsync >= self.fsync_interval
        ):
            self._fsync_active()

    def _check_end(self) -> None:
        """Make the file end where the last good block ends (see the module docstring).

        One fstat per write_many. A file longer than the tracked end holds a torn
        block from a failed write (or foreign bytes): it is truncated back. A shorter
        one was cut from outside: it is rescanned and writing continues after its last
        good block.
        """
        fd = self._require_fd()
        try:
            size = os.fstat(fd).st_size
            if size == self._end:
                return
            if size > self._end:
                os.ftruncate(fd, self._end)
                return
        except OSError as exc:
            raise storage_error("cannot restore the end of", self.active_path, exc) from exc
        scan = scan_or_raise(self.active_path, keep_blocks=False)
        try:
            os.ftruncate(fd, scan.end_of_good)
        except OSError as exc:
            raise storage_error("cannot restore the end of", self.active_path, exc) from exc
        self._end = scan.end_of_good
        self._active_first_id = scan.first_id
        if not self._end:
            self._active_since = None

    def _require_fd(self) -> int:
        if self._closed:
            raise ValueError(f"the writer of {self.directory} is closed")
        if self._fd is None:
            self._open_active()
        assert self._fd is not None
        return self._fd

    def _append(
        self, parts: list[bytes], size: int, first_id: int | None, last_id: int | None
    ) -> None:
        fd = self._require_fd()
        try:
            write_all(fd, parts)
        except OSError as exc:
            # Cut the partial block off now if possible; _check_end catches it otherwise.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, self._end)
            raise storage_error("cannot write to", self.active_path, exc) from exc
        if self._end == 0:
            self._active_first_id = first_id
            self._active_since = self._clock()
        self._end += size
        self.last_id = last_id
        self._unsynced = True
        if self.fsync_policy == "never":
            self.durable_id = last_id

    def _fsync_active(self) -> None:
        fd = self._require_fd()
        written = self.last_id
        try:
            os.fsync(fd)
        except OSError as exc:
            raise storage_error("cannot fsync", self.active_path, exc) from exc
        self.fsyncs += 1
        self._last_fsync = self._monotonic()
        self._unsynced = False
        self.durable_id = written

    def maybe_fsync(self) -> bool:
        """Fsync unsynced data if the interval is due (for the caller's timer).

        Returns whether it fsynced. Does nothing under "never"; under "always" there
        is unsynced data only after a failed fsync, which this retries.
        """
        if self._unsynced and (
            self.fsync_policy == "always"  # only after a failed fsync: retry it
            or (
                self.fsync_policy == "interval"
                and self._monotonic() - self._last_fsync >= self.fsync_interval
            )
        ):
            self._fsync_active()
            return True
        return False

    def sync(self) -> None:
        """Fsync now if anything is unsynced, whatever the policy."""
        if self._unsynced:
            self._fsync_active()

    # -- rotation -------------------------------------------------------------

    def rotate(self) -> Path | None:
        """Close active.log under its rotated name and start a new one.

        Returns the rotated path, or None if active.log is empty (nothing to do).
        Order: fsync the file, rename, fsync the directory, open a new active file,
        fsync the directory.
        """
        fd = self._require_fd()
        if self._end == 0:
            return None
        self._check_end()
        if self._unsynced:
            self._fsync_active()
        first_id = self._active_first_id if self._active_first_id is not None else 0
        target = self.directory / segment_name(self._clock(), first_id)
        if target.exists():
            raise StorageError(f"cannot rotate to {target}: it exists", path=str(target))
        try:
            os.rename(self.active_path, target)
        except OSError as exc:
            raise storage_error("cannot rotate", self.active_path, exc) from exc
        # From here on the old fd points at the rotated file: never write to it again.
        self._fd = None
        with contextlib.suppress(OSError):  # already fsynced; nothing more to lose
            os.close(fd)
        fsync_dir(self.directory)
        self._open_active()  # fsyncs the directory again
        self.rotations += 1
        return target

    def rotate_if_older(self, max_age_s: float) -> Path | None:
        """Rotate if active.log got its first data at least `max_age_s` ago (by clock())."""
        if self._active_since is None or self._end == 0:
            return None
        if self._clock() - self._active_since >= max_age_s:
            return self.rotate()
        return None

    def rotate_if_due(self) -> Path | None:
        """Rotate if `rotate_interval` is set and active.log got its first data in an
        earlier period (UTC hour, UTC day, or N-second slot) than now."""
        interval = self.rotate_interval
        if interval is None or self._active_since is None or self._end == 0:
            return None
        since = rotation_period(self._active_since, interval)
        if rotation_period(self._clock(), interval) != since:
            return self.rotate()
        return None

    # -- listing and closing --------------------------------------------------

    def rotated_segments(self) -> list[Path]:
        """Rotated segment paths (plain or .gz, one per segment), ordered by first id."""
        return list_rotated(self.directory)

    def segments(self) -> list[Path]:
        """Rotated segments in id order, then active.log (if it exists)."""
        paths = self.rotated_segments()
        if self.active_path.exists():
            paths.append(self.active_path)
        return paths

    @property
    def active_bytes(self) -> int:
        return self._end

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Fsync and close active.log. Safe to call twice."""
        fd = self._fd
        if self._closed or fd is None:
            self._closed = True
            return
        try:
            if self._unsynced:
                self._fsync_active()
        finally:
            self._closed = True
            self._fd = None
            os.close(fd)

    def __enter__(self) -> SegmentWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
