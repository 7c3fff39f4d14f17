"""The handler's fallback file: records kept on local disk while the server is away.

One append-only file of whole lines, exactly the bytes that would have been
sent, oldest first. The handler appends to it while the server is
unreachable, resends it from the start once the server is back (only then do
newer records go out), and removes it when the server confirmed its last
line. A file left by an earlier process (exit while the server was down) is
found at start and resent the same way.

Bounded: an append that would pass `max_bytes` is refused whole, and the
handler counts those records as dropped. The file holds an exclusive `flock`
while a handler owns it, so two processes logging to one server never
interleave or resend each other's records: the second one uses
`PATH.<pid>`, which no later process adopts (resend it by hand:
`cat PATH.<pid> | nc HOST PORT`). Survives the process, not the machine (no
fsync). Not thread-safe: the handler's worker thread owns it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from pathlib import Path

READ_CHUNK = 256 * 1024


def default_path(host: str, port: int) -> Path:
    """`<tmp>/logcaster-fallback-HOST-PORT.log`: one per server a host logs to."""
    safe = "".join(c if c.isalnum() or c in ".-_" else "_" for c in host)
    return Path(tempfile.gettempdir()) / f"logcaster-fallback-{safe}-{port}.log"


class FallbackFile:
    def __init__(self, path: Path, max_bytes: int) -> None:
        if max_bytes < 1:
            raise ValueError("fallback max_bytes must be >= 1")
        self.path = path  # the file in use: `base`, or `base.<pid>` when that was locked
        self._base = path
        self.max_bytes = max_bytes
        self.size = 0  # bytes in the file
        self._fd: int | None = None

    @property
    def exists(self) -> bool:
        return self._fd is not None

    def adopt(self) -> bool:
        """Take over a file left by an earlier process; True if it holds records."""
        if not self._base.exists():
            return False
        self._open(mine_if_taken=False)  # another process's file stays its own
        return self.size > 0

    def append(self, data: bytes) -> bool:
        """Append whole lines; False (nothing written) if they would pass `max_bytes`."""
        if not data:
            return True
        if self.size + len(data) > self.max_bytes:
            return False
        if self._fd is None:
            self._open()
        assert self._fd is not None
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError:
            # A partial record would shift every offset after it: cut it off.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self.size)
            raise
        self.size += len(data)
        return True

    def read(self, offset: int, limit: int = READ_CHUNK) -> bytes:
        """Whole lines from `offset`, about `limit` bytes (more if one line is longer)."""
        assert self._fd is not None
        data = os.pread(self._fd, max(limit, 1), offset)
        end = data.rfind(b"\n") + 1
        while not end and offset + len(data) < self.size:  # one line longer than limit
            data += os.pread(self._fd, READ_CHUNK, offset + len(data))
            end = data.rfind(b"\n") + 1
        return data[:end]

    def remove(self) -> None:
        """Every line is delivered: delete the file (before the lock goes)."""
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self.close()
        self.size = 0

    def close(self) -> None:
        """Keep the file for a later run; release it."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _open(self, mine_if_taken: bool = True) -> None:
        """Open and lock `path`, or `path.<pid>` when another process holds it (if
        `mine_if_taken`; else stay closed)."""
        paths = [self._base]
        if mine_if_taken:
            paths.append(self._base.with_name(f"{self._base.name}.{os.getpid()}"))
        for path in paths:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                # Locked, but maybe a file its owner removed since we opened it.
                if os.fstat(fd).st_ino != os.stat(path).st_ino:
                    raise BlockingIOError
            except (BlockingIOError, FileNotFoundError):
                os.close(fd)
                continue
            except BaseException:
                os.close(fd)
                raise
            size = os.fstat(fd).st_size
            if size:
                # A process killed mid-write leaves a partial last line: cut it, or it
                # would be sent without its newline and never be confirmed.
                tail = os.pread(fd, min(size, READ_CHUNK), max(0, size - READ_CHUNK))
                if not tail.endswith(b"\n"):
                    size = max(0, size - len(tail)) + tail.rfind(b"\n") + 1
                    os.ftruncate(fd, size)
            self.path, self._fd, self.size = path, fd, size
            return
        if mine_if_taken:
            raise OSError(f"{self._base} is locked by another process")
