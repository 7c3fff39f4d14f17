"""Which file is which: (device, inode) and a fingerprint of its first bytes.

An inode number is reused as soon as a rotated file is deleted, so (device,
inode) alone would take a new file for the old one and skip its start. The
fingerprint is the file's first line, at most FINGERPRINT_BYTES of it: fixed
once written for an append-only file, and different for a new file unless it
starts with the very same line (as Vector's and Fluent Bit's checksums, the
same known blind spot). A file without a newline yet and shorter than that
has no identity: it has no complete line to read either.
"""

from __future__ import annotations

import hashlib
import os
from typing import NamedTuple

FINGERPRINT_BYTES = 64


class FileId(NamedTuple):
    dev: int
    ino: int
    key: str  # 32 hex digits: (dev, ino, fingerprint) hashed; names the file in block labels
    head: bytes  # the fingerprint itself: a file whose first bytes changed was rewritten


def fingerprint(head: bytes) -> bytes | None:
    """The fingerprint within the first FINGERPRINT_BYTES of a file (None: not yet)."""
    nl = head.find(b"\n", 0, FINGERPRINT_BYTES)
    if nl >= 0:
        return head[: nl + 1]
    if len(head) >= FINGERPRINT_BYTES:
        return head[:FINGERPRINT_BYTES]
    return None


def identify(fd: int) -> FileId | None:
    """The identity of the open file `fd` (None: too short to fingerprint yet)."""
    st = os.fstat(fd)
    fp = fingerprint(os.pread(fd, FINGERPRINT_BYTES, 0))
    if fp is None:
        return None
    digest = hashlib.blake2b(digest_size=16)
    digest.update(b"%d:%d:" % (st.st_dev, st.st_ino))
    digest.update(fp)
    return FileId(st.st_dev, st.st_ino, digest.hexdigest(), fp)


def rewritten(fd: int, fid: FileId) -> bool:
    """Whether the open file no longer starts with the bytes it was identified by
    (truncated and written again, `cp other app.log`): one pread of the head."""
    return fingerprint(os.pread(fd, FINGERPRINT_BYTES, 0)) != fid.head


def identify_path(path: str) -> FileId | None:
    """`identify` for a file not open (None: gone, unreadable or too short)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return identify(fd)
    except OSError:
        return None
    finally:
        os.close(fd)
