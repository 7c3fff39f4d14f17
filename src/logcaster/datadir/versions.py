"""Which on-disk format a data directory holds, and the server's refusal of others.

Formats (docs/data-format.md has the history and each piece's marker):

- v1: segments of `#LC1` blocks; nothing else in the directory.
- v2: segments of `#LC2` blocks, the store's index (`index/`), forward spools,
  scale-out's number files; no FORMAT marker anywhere.
- v3 (current): v2's files, plus `FORMAT` markers: `DIR/FORMAT`
  (`{"format": 3}`), `index/FORMAT` (`{"index": 2}`, and an index rebuilt
  by `logcaster migrate`) and each spool directory's `FORMAT` (`{"spool": 1}`).

A directory without `DIR/FORMAT` was written before v3: `#LC1` in any segment
means v1, any other LogCaster data v2; no data at all is a new directory,
which the server marks as current once it holds the lock. Reading the format
never writes, so a refused start leaves the directory byte for byte as it was.
"""

from __future__ import annotations

import gzip
import os
import shlex
import zlib
from dataclasses import dataclass
from pathlib import Path

from logcaster.datadir.marker import MARKER_NAME, MarkerError, read_marker, write_marker
from logcaster.exceptions import LogCasterError, StartupError
from logcaster.segments.blocks import MAGIC
from logcaster.segments.lock import LOCK_NAME
from logcaster.segments.names import ACTIVE_NAME, QUARANTINE_DIR, list_rotated

CURRENT = 3
FORMAT_KEY = "format"
INDEX_FORMAT = 2  # 1: no block table (.blocks), never marked; 2: with it
SPOOL_FORMAT = 1  # spool segments (#LC2 blocks) and the `cursor` file
LC1_MAGIC = b"#LC1 "
# Files and directories that only LogCaster writes into a data directory: one
# of them (or a segment) is data of an older format; anything else (an audit
# log, another tool's files) is not, and leaves a directory "new".
_DATA_NAMES = ("index", "forward", QUARANTINE_DIR, "node-id", "reserved-ids")


@dataclass(frozen=True, slots=True)
class Found:
    """A data directory's format: `version` None for a new directory (no data)."""

    directory: Path
    version: int | None
    marked: bool  # read from DIR/FORMAT, not worked out from the files
    detail: str  # what it was told by, for messages

    @property
    def current(self) -> bool:
        return self.version == CURRENT

    def describe(self) -> str:
        """One line for `logcaster data validate`."""
        if self.version is None:
            return f"format: none yet ({self.detail}); a server marks it v{CURRENT}"
        said = f"format: v{self.version} ({self.detail})"
        if self.version < CURRENT:
            return f"{said}: older than v{CURRENT}; run `{migrate_command(self.directory)}`"
        if self.version > CURRENT:
            return f"{said}: newer than v{CURRENT}, which this version reads"
        return f"{said}: current"

    def to_dict(self) -> dict[str, object]:
        return {
            "version": self.version,
            "current": CURRENT,
            "marked": self.marked,
            "detail": self.detail,
        }


def migrate_command(directory: Path) -> str:
    return f"logcaster migrate {shlex.quote(str(directory))}"


def segment_files(directory: Path) -> list[Path]:
    """Rotated segments (plain or .gz) in id order, then active.log if present."""
    found = list_rotated(directory)
    active = directory / ACTIVE_NAME
    if active.is_file():
        found.append(active)
    return found


def magic_of(path: Path) -> bytes:
    """The first five bytes of a segment's content (gunzipped for .gz); b"" if unreadable."""
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read(len(MAGIC))
        with open(path, "rb") as f:
            return f.read(len(MAGIC))
    except (OSError, EOFError, zlib.error):
        return b""


def detect(directory: Path) -> Found:
    """The format of `directory` (read-only; MarkerError for an unreadable marker)."""
    marked = read_marker(directory, FORMAT_KEY)
    if marked is not None:
        return Found(directory, marked, True, f"{MARKER_NAME} marker")
    segments = segment_files(directory)
    magics = {magic_of(path) for path in segments}
    if LC1_MAGIC in magics:
        return Found(directory, 1, False, "#LC1 segments, no FORMAT marker")
    if any(_non_empty(path) for path in segments) or any(
        _holds_data(directory / name) for name in _DATA_NAMES
    ):
        return Found(directory, 2, False, "#LC2 segments, no FORMAT marker")
    return Found(directory, None, False, "no LogCaster data")


def validation_format(directory: Path) -> tuple[str, dict[str, object]]:
    """`data validate`'s format line and its --json part. A forward spool directory
    (validated like a data directory: same segments) has its own marker,
    `{"spool": N}`, which is no data directory's format."""
    try:
        spool = read_marker(directory, "spool")
    except MarkerError:
        spool = None  # not a spool's marker: detect() says what it is
    if spool is None:
        found = detect(directory)
        return found.describe(), found.to_dict()
    said = f"format: spool v{spool} ({MARKER_NAME} marker: a forward spool directory)"
    if spool != SPOOL_FORMAT:
        said += f": this version reads spool v{SPOOL_FORMAT}"
    else:
        said += ": current"
    return said, {"spool": spool, "current": SPOOL_FORMAT, "marked": True, "detail": said}


def _holds_data(path: Path) -> bool:
    """A data file, or a directory with a file in it besides a lock and a marker
    (a start that waited for an indexer left `index/lock` alone: no data)."""
    if path.is_file():
        return True
    for _, _, files in os.walk(path):
        if any(name not in (LOCK_NAME, MARKER_NAME) for name in files):
            return True
    return False


def _non_empty(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def refusal(directory: str | None) -> str | None:
    """Why a server must not start on `directory` (one line), or None.

    Read-only: it runs before the server takes the directory's lock, so a
    refused start writes nothing, not even the lock file."""
    if directory is None:
        return None
    path = Path(directory)
    if not path.is_dir():
        return None  # a new directory: the lock creates it
    try:
        found = detect(path)
    except (LogCasterError, OSError) as exc:  # an unreadable marker, a listing refused
        return f"cannot start: persist.dir: {exc}"
    return refusal_of(found)


def refusal_of(found: Found) -> str | None:
    d = found.directory
    if found.version is None or found.version == CURRENT:
        return None
    if found.version < CURRENT:
        return (
            f"data directory {d} is format v{found.version} ({found.detail}); this version "
            f"reads v{CURRENT}: run `{migrate_command(d)}` (the directory was not changed)"
        )
    return (
        f"data directory {d} is format v{found.version}, newer than v{CURRENT} which this "
        "version reads: run the LogCaster release that wrote it (no downgrade)"
    )


def mark_new(directory: str | None) -> None:
    """With the lock held: give a directory without data the current marker.

    StartupError if it now holds another format (changed since `refusal`)."""
    if directory is None:
        return
    path = Path(directory)
    try:
        found = detect(path)
        if found.version is None:
            write_marker(path, FORMAT_KEY, CURRENT)
            return
    except (LogCasterError, OSError) as exc:
        raise StartupError("persist.dir", str(exc)) from exc
    problem = refusal_of(found)
    if problem is not None:
        raise StartupError("persist.dir", problem)
