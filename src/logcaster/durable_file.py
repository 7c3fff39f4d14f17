"""Replacing a small file (a cursor, a marker, positions, an id) so that a crash
leaves the old version or the new one, never a mix or nothing; and `write_at`,
the whole of a buffer at an offset, for the index writers."""

from __future__ import annotations

import os
from pathlib import Path


def replace_durably(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write `data` to `<path>.tmp`, fsync it, rename it over `path`, fsync the
    directory (the rename is durable only then). OSError propagates: each caller
    names the file in its own error."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_at(fd: int, offset: int, data: bytes) -> None:
    """All of `data` at `offset` (pwrite may write less than asked)."""
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n
