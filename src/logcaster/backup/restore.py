"""Restoring a backup: verify everything in a staging directory, then put it in place.

The archive is read once, as a stream (a file or stdin; zstd is recognised by
its magic number, not by a name). Each member is written into the staging
directory — `DIR.partial` beside DIR, or `DIR/.logcaster-restore.partial` when
DIR is a mount point that cannot be renamed — with its SHA-256 computed on
the way. Only when the manifest (the last member) lists exactly those files
with those sizes and hashes does anything reach DIR: the staging directory is
renamed to DIR (an existing DIR, with `--force`, is renamed aside first and
removed after). A damaged or truncated archive, or any mismatch, removes the
staging directory and leaves DIR as it was. An interrupted restore leaves
`DIR.partial`, which says what it is; the next restore removes it.

Where members go: `data/X` to `DIR/X`; files that lived outside the data
directory, `external/<label>/X`, to `DIR/restored/<label>/X`, and the
effective configuration to `DIR/restored/config/effective.yaml`: a restore
never writes outside DIR.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import orjson
import zstandard

from logcaster.backup.archive import COPY_BYTES, FORMAT, FORMAT_VERSION, MANIFEST_NAME, ZSTD_MAGIC
from logcaster.backup.pin import RESTORE_PARTIAL, BackupError
from logcaster.exceptions import LogCasterError
from logcaster.segments.lock import LOCK_NAME, DataDirLock, fsync_dir, lock_holder

RESTORED_DIR = "restored"
MAX_MANIFEST_BYTES = 64 * 1024 * 1024  # ~150 bytes a file: 400,000 files


@dataclass(slots=True)
class Restored:
    files: int = 0
    bytes: int = 0
    manifest: dict[str, Any] = field(default_factory=dict)
    outside: dict[str, str] = field(default_factory=dict)  # label -> where it is now


def target_of(name: str) -> str:
    """Where archive member `name` goes, relative to DIR; BackupError if it may not."""
    parts = PurePosixPath(name).parts
    if not parts or name.startswith("/") or any(p in ("", ".", "..") or "\\" in p for p in parts):
        raise BackupError(f"the archive holds an unsafe name {name!r}")
    if parts[0] == "data" and len(parts) > 1:
        return "/".join(parts[1:])
    if parts[0] == "external" and len(parts) > 2:
        return "/".join((RESTORED_DIR, *parts[1:]))
    if parts[0] == "config" and len(parts) > 1:
        return "/".join((RESTORED_DIR, *parts))
    raise BackupError(f"the archive holds {name!r}, which is no LogCaster backup member")


def _entries(directory: Path) -> list[str]:
    return [n for n in os.listdir(directory) if n != LOCK_NAME]


def check_target(target: Path, force: bool) -> None:
    """Refuse a DIR a server holds, and a non-empty one without --force."""
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


class _Staging:
    def __init__(self, target: Path) -> None:
        self.target = target
        self.inside = target.is_dir() and os.path.ismount(target)
        if self.inside:
            self.dir = target / RESTORE_PARTIAL
        else:
            self.dir = target.with_name(target.name + ".partial")
        try:
            self._lock = DataDirLock(self.dir).acquire()
        except LogCasterError as exc:
            raise BackupError(f"cannot restore through {self.dir}: {exc}") from exc
        for name in _entries(self.dir):  # what an interrupted restore left
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
        aside = target.with_name(target.name + ".replaced")
        if target.exists():
            shutil.rmtree(aside, ignore_errors=True)
            os.rename(target, aside)
        os.rename(self.dir, target)
        fsync_dir(target.parent)
        shutil.rmtree(aside, ignore_errors=True)

    def _place_inside(self, target: Path) -> None:
        for name in _entries(target):
            if name == RESTORE_PARTIAL:
                continue
            path = target / name
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        for name in _entries(self.dir):
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


Written = dict[str, tuple[int, str, int]]  # archive name -> (size, sha256, mode)


def _read_all(tar: tarfile.TarFile, staging: Path) -> tuple[dict[str, Any], Written]:
    """Every member into `staging`; (the manifest, name -> (size, sha256, mode))."""
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
        written[member.name] = (member.size, _write_member(tar, member, staging / rel), member.mode)
    if not isinstance(manifest, dict):
        raise BackupError("the archive ends before its manifest: it is truncated")
    return manifest, written


def verify(manifest: dict[str, Any], written: Written) -> None:
    if manifest.get("format") != FORMAT or manifest.get("version") != FORMAT_VERSION:
        raise BackupError(
            f"not a LogCaster backup of format version {FORMAT_VERSION} "
            f"(format {manifest.get('format')!r}, version {manifest.get('version')!r})"
        )
    listed: dict[str, tuple[int, str]] = {}
    for entry in manifest.get("files", []):
        listed[str(entry["name"])] = (int(entry["size"]), str(entry["sha256"]))
    for name, (size, sha) in listed.items():
        got = written.get(name)
        if got is None:
            raise BackupError(f"{name} is in the manifest but not in the archive")
        if got[0] != size or got[1] != sha:
            raise BackupError(f"{name} fails its checksum: the archive is damaged")
    extra = sorted(written.keys() - listed.keys())
    if extra:
        raise BackupError(f"{extra[0]} is in the archive but not in its manifest")


def restore(raw: BinaryIO, target: Path, *, force: bool) -> Restored:
    """Verify the archive read from `raw`, then place it at `target` (BackupError if not)."""
    check_target(target, force)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = _Staging(target)
    try:
        try:
            with tarfile.open(fileobj=_open_stream(raw), mode="r|") as tar:
                manifest, written = _read_all(tar, staging.dir)
        except (tarfile.TarError, zstandard.ZstdError, EOFError) as exc:
            raise BackupError(f"the archive is damaged or truncated: {exc}") from exc
        verify(manifest, written)
        for name, (_, _, mode) in written.items():
            os.chmod(staging.dir / target_of(name), mode & 0o777)
        for top, _, _ in os.walk(staging.dir):
            fsync_dir(Path(top))  # the new names are durable before the rename
        staging.place(force)
    except BaseException:
        staging.discard()
        raise
    done = Restored(len(written), sum(size for size, _, _ in written.values()), manifest)
    for item in manifest.get("external", []):
        label = str(item["name"]).removeprefix("external/")
        done.outside[label] = f"{target / RESTORED_DIR / label} (was {item['original']})"
    with contextlib.suppress(OSError):
        fsync_dir(target)
    return done
