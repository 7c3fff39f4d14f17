"""The file names of a segment directory, and listing its rotated segments.

A directory of the event log holds `active.log` (the file being written), the
rotated segments `logcaster-<UTC timestamp>-<first id, 20 digits>.log` (or
`.log.gz` once compressed) and `quarantine/` (files and damaged bytes set
aside). The name of a rotated segment carries its rotation time and the id of
its first event, so the log can be listed in id order, and aged, without
opening a file. The writer, housekeeping, inspection, the spool and the store's
index all read the directory through these names.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

ACTIVE_NAME = "active.log"
QUARANTINE_DIR = "quarantine"

SEGMENT_NAME_RE = re.compile(r"logcaster-(\d{8}T\d{6}\.\d{6}Z)-(\d{20})\.log(?:\.gz)?")
_STAMP_FORMAT = "%Y%m%dT%H%M%S.%fZ"


def segment_name(timestamp: float, first_id: int) -> str:
    """The name of a rotated segment whose first block starts at `first_id`."""
    stamp = datetime.fromtimestamp(timestamp, UTC).strftime(_STAMP_FORMAT)
    return f"logcaster-{stamp}-{first_id:020d}.log"


def segment_time(name: str) -> float | None:
    """The rotation time (UTC timestamp) in a rotated segment's name, or None."""
    m = SEGMENT_NAME_RE.fullmatch(name)
    if m is None:
        return None
    return datetime.strptime(m[1], _STAMP_FORMAT).replace(tzinfo=UTC).timestamp()


def list_rotated(directory: Path) -> list[Path]:
    """Rotated segment files (plain or .gz) of `directory`, ordered by the first id.

    Each segment appears once: while a compression is between its rename and its
    unlink (or after a crash there) both `X.log` and `X.log.gz` exist. The .gz is
    complete then (it is renamed into place only after its fsync) and, unlike the
    .log, is not about to be unlinked, so it is the one listed.
    """
    found: dict[str, tuple[int, Path]] = {}
    for path in directory.iterdir():
        first = parse_segment_name(path.name)
        if first is None or not path.is_file():
            continue
        stem = path.name.removesuffix(".gz")
        if stem not in found or path.name.endswith(".gz"):
            found[stem] = (first, path)
    return [path for _, path in sorted(found.values(), key=lambda item: (item[0], item[1].name))]


def parse_segment_name(name: str) -> int | None:
    """The first id in a rotated segment's name, or None if it is not one."""
    m = SEGMENT_NAME_RE.fullmatch(name)
    return int(m[2]) if m else None
