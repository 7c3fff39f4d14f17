"""Restoring a backup: verify everything in a staging directory, then put it in place.

The archive is read once, as a stream (a file or stdin; zstd is recognised by
its magic number, not by a name). Each member is written into the staging
directory — `DIR.partial` beside DIR, or `DIR/.logcaster-restore.partial` when
DIR is a mount point that cannot be renamed — with its SHA-256 computed on
the way. Only when the manifest (the last member) lists exactly those files
with those sizes and hashes does anything reach DIR: the staging directory is
renamed to DIR (an existing DIR, with `--force`, is renamed aside first and
removed after). A damaged or truncated archive, a malformed manifest, or any
mismatch, removes the staging directory and leaves DIR as it was. An
interrupted restore leaves `DIR.partial` holding a marker file, which says
what it is; the next restore empties only a `DIR.partial` holding it, and
refuses while `DIR.replaced` (what an interrupted `--force` moved aside) is
there. Members keep their mode and mtime (retention and migration read the
mtime); an existing DIR's owner, group and mode carry over to what replaces it.

Where members go: manifest.py. A restore creates nothing outside DIR beyond
the staging directory (DIR's parent must exist).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import zstandard

from logcaster.backup.archive import COPY_BYTES, MANIFEST_NAME, ZSTD_MAGIC
from logcaster.backup.manifest import RESTORED_DIR, check_manifest, target_of
from logcaster.backup.pin import RESTORE_PARTIAL, BackupError
from logcaster.exceptions import LogCasterError
from logcaster.segments.lock import LOCK_NAME, DataDirLock, fsync_dir, lock_holder

MAX_MANIFEST_BYTES = 64 * 1024 * 1024  # ~150 bytes a file: 400,000 files
STAGING_MARKER = ".logcaster-restore-staging"  # in DIR.partial: made by a restore
# The test seam for restoring into a volume: a path named here counts as a mount
# point (a test cannot mount one). Nothing else reads it.
MOUNT_POINT_TEST_ENV = "LOGCASTER_TEST_MOUNT_POINT"


@dataclass(slots=True)
class Restored:
    files: int = 0
    bytes: int = 0
    manifest: dict[str, Any] = field(default_factory=dict)
    outside: dict[str, str] = field(default_factory=dict)  # label -> where it is now


def _entries(directory: Path) -> list[str]:
    """What a directory holds, besides its lock and a restore's staging inside it."""
    return [n for n in os.listdir(directory) if n not in (LOCK_NAME, RESTORE_PARTIAL)]


def is_mount_point(path: Path) -> bool:
    return os.path.ismount(path) or os.environ.get(MOUNT_POINT_TEST_ENV) == str(path)


def _beside(target: Path, suffix: str) -> Path:
    return target.with_name(target.name + suffix)


def check_target(target: Path, force: bool) -> None:
    """Refuse a DIR a server holds, a non-empty one without --force, and anything
    beside DIR a restore did not make or must not remove."""
    if not target.parent.is_dir():
        raise BackupError(f"{target.parent} does not exist: create it (a restore makes only DIR)")
    aside = _beside(target, ".replaced")
    if os.path.lexists(aside):
        raise BackupError(
            f"{aside} exists: it holds what an interrupted `restore --force` moved aside "
            f"(the former {target.name}); move it back or away, then restore again"
        )
    partial = _beside(target, ".partial")
    if partial.is_dir() and not is_mount_point(target) and not _ours(partial):
        raise BackupError(
            f"{partial} exists and no restore made it (no {STAGING_MARKER}): move it away"
        )
    if os.path.lexists(partial) and not partial.is_dir():
        raise BackupError(f"{partial} exists and is not a directory: move it away")
    if not target.exists():
        return
    if not target.is_dir():
        raise BackupError(f"{target} exists and is not a directory")
    owner = lock_holder(target)
    if owner is not None:
        who = f"process {owner}" if owner else "another process"
        raise BackupError(f"{target} is in use by {who} (lock file {target / LOCK_NAME})")
    if _entries(target) and not force:
        raise BackupError(f"{target} is not empty (give --force to replace what it holds)")


def _ours(staging: Path) -> bool:
    """A staging directory a restore made (its marker), or one holding nothing."""
    return (staging / STAGING_MARKER).is_file() or not _entries(staging)


class _Staging:
    def __init__(self, target: Path) -> None:
        self.target = target
        self.inside = target.is_dir() and is_mount_point(target)
        if self.inside:
            self.dir = target / RESTORE_PARTIAL
        else:
            self.dir = _beside(target, ".partial")
        try:
            self._lock = DataDirLock(self.dir).acquire()
        except LogCasterError as exc:
            raise BackupError(f"cannot restore through {self.dir}: {exc}") from exc
        if not self.inside and not _ours(self.dir):  # made since check_target
            self._lock.release()
            raise BackupError(f"{self.dir} exists and no restore made it: move it away")
        marker = self.dir / STAGING_MARKER
        marker.write_text("a `logcaster restore` staging directory: the next restore empties it\n")
        for name in _entries(self.dir):  # what an interrupted restore left
            if name == STAGING_MARKER:
                continue
            path = self.dir / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()

    def discard(self) -> None:
        self._lock.release()
        shutil.rmtree(self.dir, ignore_errors=True)

    def place(self, force: bool) -> None:
        """Move the verified files into DIR (see the module docstring)."""
        target = self.target
        owner: DataDirLock | None = None
        if target.exists():
            try:
                owner = DataDirLock(target).acquire()
            except LogCasterError as exc:
                raise BackupError(str(exc)) from exc
        try:
            if target.exists() and _entries(target) and not force:
                raise BackupError(f"{target} is not empty (give --force to replace what it holds)")
            if self.inside:
                self._place_inside(target)
            else:
                self._place_beside(target)
        finally:
            if owner is not None:
                owner.release()
            self._lock.release()

    def _place_beside(self, target: Path) -> None:
        aside = _beside(target, ".replaced")
        if target.exists():
            if os.path.lexists(aside):
                raise BackupError(f"{aside} exists: move it back or away, then restore again")
            os.rename(target, aside)
        (self.dir / STAGING_MARKER).unlink()  # it becomes DIR: no staging any more
        os.rename(self.dir, target)
        fsync_dir(target.parent)
        shutil.rmtree(aside, ignore_errors=True)

    def _place_inside(self, target: Path) -> None:
        for name in _entries(target):
            path = target / name
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        for name in _entries(self.dir):
            if name != STAGING_MARKER:
                os.rename(self.dir / name, target / name)
        fsync_dir(target)
        shutil.rmtree(self.dir, ignore_errors=True)


def _write_member(tar: tarfile.TarFile, member: tarfile.TarInfo, path: Path) -> str:
    """Copy one member to `path` (fsynced); its SHA-256."""
    source = tar.extractfile(member)
    assert source is not None
    sha = hashlib.sha256()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        while chunk := source.read(COPY_BYTES):
            sha.update(chunk)
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    return sha.hexdigest()


def _open_stream(raw: BinaryIO) -> BinaryIO:
    head = raw.read(4)
    rest = io.BufferedReader(_Prepend(head, raw), COPY_BYTES)
    if head == ZSTD_MAGIC:
        reader: BinaryIO = zstandard.ZstdDecompressor().stream_reader(
            rest, read_across_frames=True, closefd=False
        )
        return reader
    return rest


class _Prepend(io.RawIOBase):
    """`head` (read to tell zstd from tar), then the rest of `raw`."""

    def __init__(self, head: bytes, raw: BinaryIO) -> None:
        self.head = head
        self.raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self.head:
            n = min(len(view), len(self.head))
            view[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        data = self.raw.read(len(view))
        view[: len(data)] = data
        return len(data)


Written = dict[str, tuple[int, str, int, int]]  # archive name -> (size, sha256, mode, mtime)


def _read_all(tar: tarfile.TarFile, staging: Path) -> tuple[dict[str, Any], Written]:
    """Every member into `staging`; (the manifest, name -> (size, sha256, mode, mtime))."""
    written: Written = {}
    targets: set[str] = set()
    manifest: dict[str, Any] | None = None
    for member in tar:
        if manifest is not None:
            raise BackupError(f"the archive holds {member.name!r} after its manifest")
        if member.name == MANIFEST_NAME:
            if not member.isfile() or member.size > MAX_MANIFEST_BYTES:
                raise BackupError("the archive's manifest is not a file of sane size")
            source = tar.extractfile(member)
            assert source is not None
            try:
                manifest = orjson.loads(source.read())
            except orjson.JSONDecodeError as exc:
                raise BackupError(f"the archive's manifest is not JSON: {exc}") from exc
            continue
        if not member.isfile():
            raise BackupError(f"the archive holds {member.name!r}, which is not a regular file")
        rel = target_of(member.name)
        if rel in targets or member.name in written:
            raise BackupError(f"the archive holds {member.name!r} twice")
        targets.add(rel)
        sha = _write_member(tar, member, staging / rel)
        written[member.name] = (member.size, sha, member.mode, int(member.mtime))
    if not isinstance(manifest, dict):
        raise BackupError("the archive ends before its manifest: it is truncated")
    return manifest, written


def verify(manifest: dict[str, Any], written: Written) -> dict[str, str]:
    """The manifest well formed and listing exactly what was written (BackupError
    if not); its outside files, label -> original path."""
    listed, outside = check_manifest(manifest)
    for name, (size, sha) in listed.items():
        got = written.get(name)
        if got is None:
            raise BackupError(f"{name} is in the manifest but not in the archive")
        if got[0] != size or got[1] != sha:
            raise BackupError(f"{name} fails its checksum: the archive is damaged")
    extra = sorted(written.keys() - listed.keys())
    if extra:
        raise BackupError(f"{extra[0]} is in the archive but not in its manifest")
    return outside


def _adopt(staging: Path, owner: os.stat_result, inside: bool) -> None:
    """Give what replaces DIR its owner and group (as root; another user owns what
    it writes already) and, when the staging directory becomes DIR, DIR's mode:
    the service user must still open DIR and its lock file."""
    if os.geteuid() == 0:
        for top, dirs, files in os.walk(staging):
            for name in (*dirs, *files):
                os.chown(Path(top, name), owner.st_uid, owner.st_gid, follow_symlinks=False)
        if not inside:
            os.chown(staging, owner.st_uid, owner.st_gid)
    if not inside:
        os.chmod(staging, stat.S_IMODE(owner.st_mode))


def restore(raw: BinaryIO, target: Path, *, force: bool) -> Restored:
    """Verify the archive read from `raw`, then place it at `target` (BackupError if not)."""
    check_target(target, force)
    owner = os.stat(target) if target.is_dir() else None
    staging = _Staging(target)
    try:
        try:
            with tarfile.open(fileobj=_open_stream(raw), mode="r|") as tar:
                manifest, written = _read_all(tar, staging.dir)
        except (tarfile.TarError, zstandard.ZstdError, EOFError) as exc:
            raise BackupError(f"the archive is damaged or truncated: {exc}") from exc
        outside = verify(manifest, written)
        for name, (_, _, mode, mtime) in written.items():
            path = staging.dir / target_of(name)
            os.chmod(path, mode & 0o777)
            os.utime(path, (mtime, mtime))  # retention and migration read it
        if owner is not None:
            _adopt(staging.dir, owner, staging.inside)
        for top, _, _ in os.walk(staging.dir):
            fsync_dir(Path(top))  # the new names are durable before the rename
        staging.place(force)
    except BaseException:
        staging.discard()
        raise
    done = Restored(len(written), sum(size for size, *_ in written.values()), manifest)
    for label, original in outside.items():
        done.outside[label] = f"{target / RESTORED_DIR / label} (was {original})"
    with contextlib.suppress(OSError):
        fsync_dir(target)
    return done
