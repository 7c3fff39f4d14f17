"""At start: files renamed away while the server was down (or right after a crash
at a rename rotation), found again by identity to finish them.

The positions name each file's last path, device and inode. When the path now
names another file (or none), the directory it was in is listed once: a regular
file there with the same device, inode and first line (the saved key) that is
longer than its position is the rotated file (`app.log.1`), with an unread end
that no glob may match. It is opened like a file renamed while followed: read to
its end, then closed after `rotate_wait`.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from pathlib import Path

from logcaster.sources.files.discovery import Candidate
from logcaster.sources.files.identity import identify_path
from logcaster.sources.files.options import FileInput
from logcaster.sources.files.positions import Entry

# Directories listed at most (each once), so a huge positions file costs a bounded start.
MAX_DIRS = 1000


def rotated_away(entries: dict[str, Entry], inputs: list[FileInput]) -> list[Candidate]:
    """The files to finish (blocking: call in a thread)."""
    by_dir: dict[str, dict[tuple[int, int], str]] = {}  # dir -> (dev, ino) -> key
    for key, entry in entries.items():
        if entry.dev < 0 or not entry.path or _still_there(entry):
            continue
        parent = str(Path(entry.path).parent)
        if parent in by_dir or len(by_dir) < MAX_DIRS:
            by_dir.setdefault(parent, {})[(entry.dev, entry.ino)] = key
    out: list[Candidate] = []
    for parent, wanted in by_dir.items():
        try:
            names = os.listdir(parent)
        except OSError:
            continue
        for name in names:
            path = os.path.join(parent, name)
            try:
                st = os.stat(path)
            except OSError:
                continue
            saved = wanted.get((st.st_dev, st.st_ino))
            if saved is None or not stat.S_ISREG(st.st_mode):
                continue
            entry = entries[saved]
            fid = identify_path(path)
            which = _input_of(entry.path, inputs)
            if fid is None or fid.key != saved or st.st_size <= entry.offset or which is None:
                continue
            out.append(Candidate(which, path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    return out


def _still_there(entry: Entry) -> bool:
    """The saved path still names the same file: the globs find it as usual."""
    try:
        st = os.stat(entry.path)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (entry.dev, entry.ino)


def _input_of(path: str, inputs: list[FileInput]) -> int | None:
    """The input whose glob matched the file's last path (its service and framer)."""
    for i, entry in enumerate(inputs):
        if any(fnmatch.fnmatch(path, pattern) for pattern in entry.paths):
            return i
    return None
