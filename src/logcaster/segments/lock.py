"""One owner per data directory: an exclusive `flock` on `DIR/lock`.

Two servers writing one directory interleave their blocks in active.log and
reuse each other's ids, so the server takes this lock before it touches
anything in the directory (file sink, store index, forward spools), and every
`logcaster data ...` command that writes must take it too (`DataDirLock`).
Read-only commands only look (`lock_holder`).

- `flock`, not a PID file: the kernel drops the lock when the last descriptor
  of its open file description closes, on every exit, `kill -9` included. A
  lock file left behind by a dead process is therefore never "stale": the next
  start takes it. The PID written into it is only for the refusal message.
- The descriptor is opened with O_CLOEXEC, so no child process (the store's
  indexer is spawned by exec, which closes inherited descriptors anyway)
  shares the open file description: the lock ends with the process that took
  it, even if a child lives on for a moment after a `kill -9`.
- The file is never unlinked: unlinking races with another process that has
  just opened the old file and would lock an inode nobody else sees.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from logcaster.exceptions import LogCasterError, StorageError

LOCK_NAME = "lock"
# A read-only probe holds a shared lock for a few microseconds; an acquire that
# meets only shared holders retries this long before it gives up.
_PROBE_WAIT_S = 1.0
_PROBE_RETRY_S = 0.01
_WAIT_RETRY_S = 0.05  # between tries of an acquire that waits for the owner to go


class DataDirLocked(LogCasterError):
    """Another process owns the directory; the message names it (one line)."""

    def __init__(self, directory: Path, pid: int | None) -> None:
        who = f"process {pid}" if pid else "another process"
        super().__init__(
            f"data directory {directory} is in use by {who} (lock file {directory / LOCK_NAME})"
        )
        self.directory = directory
        self.pid = pid


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def storage_error(what: str, path: Path | str, exc: OSError) -> StorageError:
    """A StorageError saying what failed on which path, and the OS's reason."""
    return StorageError(f"{what} {path}: {exc.strerror or exc}", path=str(path), errno=exc.errno)


def fsync_dir(directory: Path) -> None:
    """Make renames and creations in `directory` durable."""
    try:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise storage_error("fsync of directory", directory, exc) from exc


def make_directory(directory: Path) -> None:
    """Create `directory` (and its parents) if missing; StorageError saying why not."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        # mkdir's "File exists" for a regular file (or a file on the way) misleads.
        exc.strerror = "exists and is not a directory"
        raise storage_error("cannot use", directory, exc) from exc
    except OSError as exc:
        raise storage_error("cannot create", directory, exc) from exc


class DataDirLock:
    """The exclusive lock on a data directory, held from `acquire` to `release`.

    `with DataDirLock(path):` holds it for a block. `acquire` creates the
    directory if needed (nothing else in it) and raises `DataDirLocked` if
    another process holds the lock, `StorageError` if the lock file cannot be
    made (a read-only filesystem, a regular file in the way).
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, wait: float | None = 0.0) -> DataDirLock:
        """Take the lock; while another process holds it, retry for `wait` seconds
        (None: until it is free) before raising `DataDirLocked`."""
        deadline = None if wait is None else time.monotonic() + wait
        while True:
            try:
                return self._acquire()
            except DataDirLocked:
                if deadline is not None and time.monotonic() >= deadline:
                    raise
            time.sleep(_WAIT_RETRY_S)

    def _acquire(self) -> DataDirLock:
        if self._fd is not None:
            return self
        make_directory(self.directory)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise storage_error("cannot open lock file", self.path, exc) from exc
        try:
            self._lock(fd)
            pid = b"%d\n" % os.getpid()
            os.ftruncate(fd, 0)
            os.pwrite(fd, pid, 0)
        except BaseException as exc:
            os.close(fd)
            if isinstance(exc, OSError):
                raise storage_error("cannot lock", self.path, exc) from exc
            raise
        self._fd = fd
        return self

    def _lock(self, fd: int) -> None:
        deadline = time.monotonic() + _PROBE_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            # Held exclusively by an owner, or shared for a moment by a probe?
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                raise DataDirLocked(self.directory, _read_pid(fd)) from None
            fcntl.flock(fd, fcntl.LOCK_UN)
            if time.monotonic() > deadline:
                raise DataDirLocked(self.directory, _read_pid(fd))
            time.sleep(_PROBE_RETRY_S)

    def release(self) -> None:
        """Drop the lock (safe to call twice). The file stays; its PID is cleared."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the only descriptor releases the flock

    def __enter__(self) -> DataDirLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def lock_all(directories: list[Path]) -> list[DataDirLock]:
    """Lock every directory, in order; on a refusal, release those taken and raise."""
    taken: list[DataDirLock] = []
    try:
        for directory in directories:
            taken.append(DataDirLock(directory).acquire())  # noqa: PERF401 - keep those taken
    except BaseException:
        for lock in taken:
            lock.release()
        raise
    return taken


def lock_holder(directory: str | os.PathLike[str]) -> int | None:
    """Read-only probe: the PID owning `directory`, or None if nobody holds its lock.

    Returns 0 when the lock is held but the PID cannot be read (being written).
    Takes a shared lock for an instant, which writes nothing; an `acquire`
    meeting it retries (see `_PROBE_WAIT_S`).
    """
    path = Path(directory) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None  # no lock file (never served) or unreadable: nobody to name
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd) or 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
