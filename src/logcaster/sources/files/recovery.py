"""At start: how far the segments say each file was stored.

Each batch read from a file carries the file's key and the offset its texts end
at in its source label (labels.py), so the file sink's blocks record the
progress together with the lines, in one write. The positions file was saved
with the durable id of its moment; only blocks after that id can hold newer
offsets, so only the segments that may hold them are read: the last rotated
segment starting at or before that id, the later ones, and active.log.
"""

from __future__ import annotations

from pathlib import Path

from logcaster.segments import read_batches
from logcaster.segments.names import ACTIVE_NAME, list_rotated, parse_segment_name
from logcaster.sources.files.labels import file_position


def stored_offsets(directory: Path, after_id: int) -> dict[str, int]:
    """Key -> the largest end offset named by a block holding ids past `after_id`
    (blocking: call in a thread)."""
    for _ in range(3):
        try:
            return _scan(directory, after_id)
        except FileNotFoundError:
            continue  # housekeeping compressed or retired a segment meanwhile: list again
    return _scan(directory, after_id)


def _scan(directory: Path, after_id: int) -> dict[str, int]:
    rotated = list_rotated(directory)
    start = 0
    for i, path in enumerate(rotated):
        first = parse_segment_name(path.name)
        if first is not None and first <= after_id + 1:
            start = i
    paths = rotated[start:]
    active = directory / ACTIVE_NAME
    if active.exists():
        paths.append(active)
    found: dict[str, int] = {}
    for path in paths:
        for batch in read_batches(path):
            if batch.first_id + len(batch.texts) - 1 <= after_id:
                continue
            position = file_position(batch.source)
            if position is not None and position[1] > found.get(position[0], -1):
                found[position[0]] = position[1]
    return found
