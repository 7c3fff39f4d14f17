"""Finding the files to follow: the inputs' globs, polled (no inotify: it misses
files on network file systems and in some containers, and a poll every
`poll_interval` seconds bounds the delay all the same).
"""

from __future__ import annotations

import fnmatch
import glob
import os
import stat
from typing import NamedTuple

from logcaster.sources.files.options import FileInput


class Candidate(NamedTuple):
    """A regular file a glob matched, as `stat` saw it."""

    input: int  # index in sources.files.inputs
    path: str
    dev: int
    ino: int
    size: int
    mtime_ns: int


class Found(NamedTuple):
    candidates: list[Candidate]
    per_glob: dict[str, int]  # matches by glob, for the too-many-files warning


def scan(inputs: list[FileInput]) -> Found:
    """Every regular file the inputs match, each (device, inode) once, first input
    first (blocking: call in a thread). Excluded paths and vanished files are skipped."""
    seen: set[tuple[int, int]] = set()
    out: list[Candidate] = []
    per_glob: dict[str, int] = {}
    for i, entry in enumerate(inputs):
        for pattern in entry.paths:
            matched = 0
            for path in sorted(glob.glob(pattern)):
                if any(fnmatch.fnmatch(path, ex) for ex in entry.exclude):
                    continue
                try:
                    st = os.stat(path)
                except OSError:
                    continue  # gone between the listing and the stat
                if not stat.S_ISREG(st.st_mode):
                    continue
                matched += 1
                ident = (st.st_dev, st.st_ino)
                if ident in seen:
                    continue
                seen.add(ident)
                out.append(Candidate(i, path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
            per_glob[pattern] = matched
    return Found(out, per_glob)
