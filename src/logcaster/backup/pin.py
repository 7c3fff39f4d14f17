"""Pinning a directory tree with hard links, so nothing the server does later moves it.

A hard link names the same inode as the file: when the server then renames
active.log into a rotated segment, compresses a segment (new file, old one
unlinked), lets retention delete one or drains a spool, the linked inode keeps
the bytes it had. Appends and in-place rewrites (active.log, the index's last
chunk) still reach it, which is why the plan records sizes at pin time and cuts
at whole blocks (plan.py, index_cut.py).

The links live in `<root>/.logcaster-backup-<pid>/`, on the root's own
filesystem (a link cannot cross one), mirroring the tree. The staging
directory holds its own `DataDirLock`: one left by a killed backup is not
locked, and the next backup removes it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from logcaster.exceptions import LogCasterError
from logcaster.segments.lock import LOCK_NAME, DataDirLock, DataDirLocked

STAGING_PREFIX = ".logcaster-backup-"
RESTORE_PARTIAL = ".logcaster-restore.partial"


class BackupError(LogCasterError):
    """A backup or restore cannot go on; the message is the one line the operator sees."""


def excluded(name: str) -> bool:
    """Files a backup never copies: lock files (a restored directory is unlocked) and
    temporary files of an atomic replace in progress (`*.tmp`, the token file's
    `.tokens-*`), and the staging directories of backups and restores."""
    return (
        name == LOCK_NAME
        or name.endswith(".tmp")
        or name.startswith((".tokens-", STAGING_PREFIX, RESTORE_PARTIAL))
    )


@dataclass(frozen=True, slots=True)
class Pinned:
    rel: str  # path relative to the tree root, "/"-separated
    link: Path  # the hard link in the staging directory
    size: int  # at the moment it was pinned
    inode: tuple[int, int]  # (st_dev, st_ino)
    mode: int  # permission bits
    mtime: float


def walk(root: Path) -> list[str]:
    """Every regular file under `root` (relative, "/"-separated), minus `excluded` names.

    Symbolic links are neither followed nor copied: nothing LogCaster writes is one."""
    out: list[str] = []
    for top, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not excluded(d))
        rel_top = os.path.relpath(top, root)
        prefix = "" if rel_top == "." else rel_top.replace(os.sep, "/") + "/"
        out.extend(prefix + name for name in sorted(files) if not excluded(name))
    return out


def remove_stale(root: Path) -> None:
    """Delete staging directories whose backup is gone (its lock is free)."""
    try:
        entries = [e for e in os.scandir(root) if e.name.startswith(STAGING_PREFIX)]
    except OSError:
        return
    for entry in entries:
        lock = DataDirLock(entry.path)
        try:
            lock.acquire()
        except (DataDirLocked, LogCasterError):
            continue  # another backup is running
        lock.release()
        shutil.rmtree(entry.path, ignore_errors=True)


class Staging:
    """The hard links of one tree, removed by `close`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        remove_stale(root)
        self.dir = root / f"{STAGING_PREFIX}{os.getpid()}"
        try:
            self._lock = DataDirLock(self.dir).acquire()
        except LogCasterError as exc:
            raise BackupError(f"cannot make the staging directory in {root}: {exc}") from exc
        self.tree = self.dir / "tree"

    def pin(self, rel: str, as_name: str | None = None) -> Pinned | None:
        """Link `root/rel` into the staging tree (as `as_name` if given); None if it
        is gone or no regular file."""
        source = self.root / rel
        link = self.tree / (as_name or rel)
        link.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        try:
            os.link(source, link, follow_symlinks=False)
        except FileNotFoundError:
            return None  # renamed or deleted since it was listed
        except OSError as exc:
            raise BackupError(
                f"cannot hard-link {source} into {self.dir}: {exc.strerror or exc} "
                "(run the backup as the server's user, on the data directory's filesystem)"
            ) from exc
        st = os.lstat(link)
        if not stat.S_ISREG(st.st_mode):
            link.unlink()
            return None
        return Pinned(
            rel, link, st.st_size, (st.st_dev, st.st_ino), stat.S_IMODE(st.st_mode), st.st_mtime
        )

    def close(self) -> None:
        self._lock.release()
        shutil.rmtree(self.dir, ignore_errors=True)
