"""Writing a backup archive: a tar stream, its members hashed as they are copied.

Every member is streamed from its pinned file in 1 MiB reads (`tarfile`'s copy
loop), its SHA-256 computed on the way, so memory stays flat whatever the
sizes. The manifest (JSON: format, versions, time, snapshot id, and per file
its size and SHA-256) is the last member, since the hashes are known only
then. With zstd the whole tar is one zstd frame with its content checksum.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import sys
import tarfile
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO, Any, BinaryIO

import orjson
import zstandard

from logcaster import __version__
from logcaster.backup.manifest import FORMAT, FORMAT_VERSION
from logcaster.backup.pin import BackupError
from logcaster.backup.plan import Member

MANIFEST_NAME = "MANIFEST.json"
COPY_BYTES = 1 << 20
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class Progress:
    """`bytes done / total` on stderr, redrawn at most 5 times a second, when enabled."""

    def __init__(self, total: int, enabled: bool, stream: IO[str] = sys.stderr) -> None:
        self.total = total
        self.done = 0
        self.enabled = enabled
        self.stream = stream
        self.started = time.monotonic()
        self._drawn = 0.0

    def add(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and now - self._drawn >= 0.2:
            self._drawn = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        mib = 1024 * 1024
        total = max(self.total, self.done)
        pct = 100 * self.done / total if total else 100.0
        rate = self.done / mib / max(now - self.started, 1e-6)
        self.stream.write(
            f"\rbackup: {self.done / mib:.1f} / {total / mib:.1f} MiB ({pct:.0f}%), "
            f"{rate:.0f} MiB/s "
        )
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()


class _HashingReader(io.RawIOBase):
    """At most `size` bytes of `source`, hashed and counted as tarfile reads them."""

    def __init__(self, source: BinaryIO, size: int, progress: Progress) -> None:
        self.source = source
        self.left = size
        self.sha = hashlib.sha256()
        self.progress = progress

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        want = self.left if n < 0 else min(n, self.left)
        data = self.source.read(want) if want else b""
        self.left -= len(data)
        self.sha.update(data)
        self.progress.add(len(data))
        return data


class ArchiveWriter:
    """Writes members and then the manifest into `out` (tar, zstd-compressed if asked)."""

    def __init__(self, out: BinaryIO, *, zstd_level: int | None, progress: Progress) -> None:
        self._raw = out
        self._zstd = (
            zstandard.ZstdCompressor(level=zstd_level, write_checksum=True).stream_writer(
                out, closefd=False
            )
            if zstd_level is not None
            else None
        )
        target: Any = self._zstd if self._zstd is not None else out
        self._tar = tarfile.open(  # noqa: SIM115 - closed by finish()
            fileobj=target, mode="w|", format=tarfile.PAX_FORMAT, bufsize=COPY_BYTES
        )
        self._tar.copybufsize = COPY_BYTES  # type: ignore[attr-defined]  # reads per member: 1 MiB, not tarfile's 16 KiB
        self.progress = progress
        self.files: list[dict[str, Any]] = []
        self.bytes = 0

    def add(self, member: Member) -> None:
        info = tarfile.TarInfo(member.name)
        info.size = member.size
        info.mode = member.mode & 0o777
        info.mtime = int(member.mtime)
        if member.data is not None:
            source: BinaryIO = io.BytesIO(member.data)
        else:
            assert member.link is not None
            source = open(member.link, "rb")  # noqa: SIM115 - closed below
        try:
            reader = _HashingReader(source, member.size, self.progress)
            try:
                self._tar.addfile(info, reader)
            except OSError as exc:
                if "unexpected end of data" in str(exc):
                    raise BackupError(f"{member.name} shrank during the backup") from exc
                raise
        finally:
            source.close()
        digest = reader.sha.hexdigest()
        self.files.append({"name": member.name, "size": member.size, "sha256": digest})
        self.bytes += member.size

    def add_all(self, members: Iterable[Member]) -> None:
        for member in members:
            self.add(member)

    def abort(self) -> None:
        """End the tar stream object after a failure, before its output is closed
        (else it tries to write its end when garbage-collected)."""
        with contextlib.suppress(Exception):
            self._tar.close()

    def finish(self, header: dict[str, Any]) -> dict[str, Any]:
        """Write the manifest last and end the stream; returns the manifest."""
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "logcaster_version": __version__,
            "created": datetime.now(UTC).isoformat(timespec="milliseconds"),
            **header,
            "files": self.files,
        }
        data = orjson.dumps(manifest, option=orjson.OPT_INDENT_2)
        info = tarfile.TarInfo(MANIFEST_NAME)
        info.size = len(data)
        info.mode = 0o600
        info.mtime = int(time.time())
        self._tar.addfile(info, io.BytesIO(data))
        self._tar.close()
        if self._zstd is not None:
            self._zstd.flush(zstandard.FLUSH_FRAME)
        self._raw.flush()
        return manifest
