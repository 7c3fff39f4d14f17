"""The positions file: how far each file is stored, saved atomically (a cache).

Exactness does not rest on it: every stored batch of a file names the file and
the offset it ends at in its block's source label (tailer.py), and at start the
source takes the larger of this file's offset and the newest blocks'
(recovery.py). This file saves that scan in the common case and keeps the
position of files whose blocks were all rotated away by retention. Written as
temp + fsync + rename + fsync of the directory, so a crash leaves the old
version or the new one, never half of one. Entries of files no glob matches are
kept (a log directory moved away and back resumes); the source keeps them in
order of last seen and drops the least recently seen past MAX_ENTRIES.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import msgspec

from logcaster.durable_file import replace_durably
from logcaster.exceptions import StorageError

VERSION = 1
NAME = "file-positions.json"
# Entries kept at most (the least recently seen go first: the dict is in that order).
MAX_ENTRIES = 100_000


class Entry(msgspec.Struct, frozen=True):
    path: str  # where it was last seen (informative: the key identifies the file)
    dev: int  # with `ino`: a closed file read to its end is not opened again
    ino: int
    offset: int  # every byte before it is stored durably


class PositionsDoc(msgspec.Struct, frozen=True):
    version: int
    # The pipeline's durable id when saved: blocks up to it are covered here, so
    # recovery reads only the segments that can hold later ones.
    durable_id: int
    files: dict[str, Entry]


def load(directory: Path) -> PositionsDoc | None:
    """The saved positions (None: never saved). A damaged or foreign file raises
    StorageError naming it: guessing would read files twice or skip them."""
    path = directory / NAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(f"{path}: {exc.strerror}", path=str(path), errno=exc.errno) from exc
    try:
        doc = msgspec.json.decode(raw, type=PositionsDoc)
    except msgspec.DecodeError as exc:
        raise StorageError(f"{path}: not a positions file ({exc})", path=str(path)) from exc
    if doc.version != VERSION:
        reason = f"{path}: version {doc.version}, this server reads {VERSION}"
        raise StorageError(reason, path=str(path))
    return doc


def save(directory: Path, durable_id: int, files: dict[str, Entry]) -> None:
    """Replace the positions file atomically and durably (blocking: call in a thread)."""
    directory.mkdir(parents=True, exist_ok=True)
    if len(files) > MAX_ENTRIES:
        files = dict(list(files.items())[-MAX_ENTRIES:])
    data = msgspec.json.encode(PositionsDoc(VERSION, durable_id, files))
    replace_durably(directory / NAME, data, 0o600)


def remove_leftover(directory: Path) -> None:
    """A temp file a crash left behind (the rename never happened): not the positions."""
    with contextlib.suppress(FileNotFoundError):
        (directory / (NAME + ".tmp")).unlink()
