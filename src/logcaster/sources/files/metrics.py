"""The file-tail source's metrics (docs/metrics.md style: base units, counters as totals)."""

from __future__ import annotations

from logcaster.metrics.registry import Metric

FILES_WATCHED = Metric("files_watched", "gauge", "Files open and followed", stats="FilesWatched")
FILES_WAITING = Metric(
    "files_waiting",
    "gauge",
    "Files the globs match that wait for a slot (sources.files.max_open_files)",
    stats="FilesWaiting",
)
FILE_READ_BYTES = Metric(
    "file_read_bytes", "counter", "Bytes read from followed files", stats="FileReadBytes"
)
FILE_LINES = Metric("file_lines", "counter", "Lines read from followed files", stats="FileLines")
FILE_ROTATIONS = Metric(
    "file_rotations",
    "counter",
    "Followed files renamed away or deleted (read to their end, then closed)",
    stats="FileRotations",
)
FILE_TRUNCATIONS = Metric(
    "file_truncations",
    "counter",
    "Followed files found shorter than read (copytruncate): read again from the start",
    stats="FileTruncations",
)
