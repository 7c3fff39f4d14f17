"""Offline checks of a data directory: `logcaster data validate` and `data inspect`.

Nothing here writes: unlike opening a `SegmentWriter`, validating never
truncates a torn tail or quarantines a file, so it is safe on the directory of a
running server (a block being written at that moment may show as a torn tail).

Segments are taken in the order the server reads them: rotated files
(`logcaster-<stamp>-<first id>.log[.gz]`) by the first id in their names, then
`active.log`. Files in `quarantine/` are scanned and listed separately: they were
set aside because of damage already reported at start-up, so their problems do
not make a directory invalid.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from logcaster.datadir.versions import CURRENT, validation_format
from logcaster.exceptions import LogCasterError
from logcaster.segments.blocks import MODES
from logcaster.segments.names import ACTIVE_NAME, QUARANTINE_DIR, SEGMENT_NAME_RE, list_rotated
from logcaster.segments.repair import parse_damaged_name
from logcaster.segments.segment import Corruption, scan_segment

FileKind = Literal["rotated", "active", "quarantined"]


class DataDirError(Exception):
    """The directory does not exist or does not look like a LogCaster data dir."""


@dataclass(slots=True)
class FileProblem:
    """One damaged place in a file.

    kind "torn_tail": `bytes` bytes from `offset` to the end fail (0 for a broken
    gzip stream, whose rest cannot be measured). kind "corruption": damage at
    `offset`, `bytes` bytes skipped before the next good block. kind
    "unreadable": the file could not be read at all (`reason` says why). kind
    "set_aside": a quarantined copy of the `bytes` damaged bytes found at
    `offset` of the file `reason` names (see `segments/repair.py`).
    """

    kind: Literal["torn_tail", "corruption", "unreadable", "set_aside"]
    offset: int
    bytes: int
    reason: str

    def describe(self) -> str:
        if self.kind == "torn_tail":
            size = f"{self.bytes} bytes" if self.bytes else "rest of stream"
            return f"torn tail at offset {self.offset}: {self.reason} ({size})"
        if self.kind == "corruption":
            return f"corruption at offset {self.offset}: {self.reason} (skipped {self.bytes} bytes)"
        if self.kind == "set_aside":
            return f"damaged bytes of {self.reason} at offset {self.offset} ({self.bytes} bytes)"
        return f"unreadable: {self.reason}"


@dataclass(slots=True)
class FileReport:
    path: str  # relative to the data dir
    kind: FileKind
    size: int  # bytes on disk
    data_bytes: int  # bytes of the block stream (uncompressed for .gz)
    compressed: bool
    mtime: float
    blocks: int = 0
    events: int = 0
    first_id: int | None = None
    last_id: int | None = None
    problems: list[FileProblem] = field(default_factory=list)
    modes: dict[str, int] = field(default_factory=dict)  # good blocks per payload mode
    first_received: float | None = None  # receive time of the first good block
    last_received: float | None = None  # of the last good block

    @property
    def ok(self) -> bool:
        return not self.problems

    def mode_summary(self) -> str:
        """ "raw", "json", "raw+json" (blocks of both), or "-" without blocks."""
        return "+".join(m for m in MODES if self.modes.get(m)) or "-"

    def id_range(self) -> str:
        if self.first_id is None:
            return "-"
        return f"{self.first_id}..{self.last_id}"


@dataclass(slots=True)
class IdIssue:
    """Ids between two consecutive segments: "overlap" (a problem) or "gap" (a note)."""

    kind: Literal["gap", "overlap"]
    before: str  # path of the earlier file
    after: str  # path of the later file
    before_last_id: int
    after_first_id: int

    def describe(self) -> str:
        if self.kind == "gap":
            lo, hi = self.before_last_id + 1, self.after_first_id - 1
            missing = hi - lo + 1
            return (
                f"id gap: {self.before} ends at {self.before_last_id}, {self.after} starts at "
                f"{self.after_first_id} ({missing} ids missing: {lo}..{hi})"
            )
        where = self.before if self.before == self.after else f"{self.before} -> {self.after}"
        return (
            f"id overlap: {where}: id {self.after_first_id} follows "
            f"{self.before_last_id} (ids must strictly increase)"
        )


@dataclass(slots=True)
class Validation:
    directory: str
    segments: list[FileReport]
    quarantined: list[FileReport]
    id_issues: list[IdIssue]
    # The directory's format (datadir/versions.py): one line, and its parts for --json.
    format_line: str = ""
    format: dict[str, Any] = field(default_factory=dict)

    @property
    def problem_count(self) -> int:
        """Problems that make the directory invalid (quarantine excluded, gaps excluded)."""
        return sum(len(f.problems) for f in self.segments) + sum(
            1 for i in self.id_issues if i.kind == "overlap"
        )

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    @property
    def events(self) -> int:
        return sum(f.events for f in self.segments)

    @property
    def first_id(self) -> int | None:
        ids = [f.first_id for f in self.segments if f.first_id is not None]
        return min(ids) if ids else None

    @property
    def last_id(self) -> int | None:
        ids = [f.last_id for f in self.segments if f.last_id is not None]
        return max(ids) if ids else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "directory": self.directory,
            "ok": self.ok,
            "problems": self.problem_count,
            "events": self.events,
            "first_id": self.first_id,
            "last_id": self.last_id,
            "segments": [_file_dict(f) for f in self.segments],
            "quarantined": [_file_dict(f) for f in self.quarantined],
            "id_issues": [asdict(i) for i in self.id_issues],
            "format": self.format,
        }


def _file_dict(report: FileReport) -> dict[str, Any]:
    d = asdict(report)
    d["ok"] = report.ok
    d["mtime_utc"] = _utc(report.mtime)
    d["first_received_utc"] = _utc(report.first_received)
    d["last_received_utc"] = _utc(report.last_received)
    return d


def _utc(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def find_segments(directory: Path) -> tuple[list[Path], list[Path]]:
    """(segments in read order, quarantined files) of a data dir.

    Raises DataDirError if `directory` is missing, not a directory, or holds
    neither active.log, a rotated segment nor a quarantine/ directory.
    """
    if not directory.exists():
        raise DataDirError(f"{directory}: no such directory")
    if not directory.is_dir():
        raise DataDirError(f"{directory}: not a directory")
    try:
        # One file per segment, as the server reads them: of an `X.log` next to its
        # complete `X.log.gz` (a compression interrupted before its unlink) only the .gz.
        segments = list_rotated(directory)
    except OSError as exc:
        raise DataDirError(f"{directory}: cannot list: {exc.strerror or exc}") from exc
    active = directory / ACTIVE_NAME
    if active.is_file():
        segments.append(active)
    qdir = directory / QUARANTINE_DIR
    quarantined: list[Path] = []
    if qdir.is_dir():
        quarantined = sorted(p for p in qdir.iterdir() if p.is_file())
    if not segments and not qdir.is_dir():
        raise DataDirError(
            f"{directory}: not a LogCaster data directory "
            f"(no {ACTIVE_NAME}, no logcaster-*.log segments, no {QUARANTINE_DIR}/)"
        )
    return segments, quarantined


def scan_file(path: Path, directory: Path, kind: FileKind) -> FileReport:
    """Verify every block of one file; never raises for bad content or I/O errors."""
    rel = os.path.relpath(path, directory)
    try:
        st = path.stat()
        size, mtime = st.st_size, st.st_mtime
    except OSError:
        size, mtime = 0, 0.0
    report = FileReport(rel, kind, size, 0, path.name.endswith(".gz"), mtime)
    damaged = parse_damaged_name(path.name) if kind == "quarantined" else None
    if damaged is not None:
        # Only the damaged bytes of a repaired file: there is no block in it to scan.
        report.problems.append(FileProblem("set_aside", damaged[1], size, damaged[0]))
        return report
    try:
        scan = scan_segment(path, keep_blocks=True)
    except OSError as exc:
        report.problems.append(FileProblem("unreadable", 0, 0, exc.strerror or str(exc)))
        return report
    report.data_bytes = scan.size
    report.blocks = scan.block_count
    report.events = scan.event_count
    report.first_id = scan.first_id
    report.last_id = scan.last_id
    report.modes = dict(scan.mode_blocks)
    report.first_received = scan.first_received
    report.last_received = scan.last_received
    for p in scan.problems:
        if isinstance(p, Corruption):
            report.problems.append(FileProblem("corruption", p.offset, p.skipped, p.reason))
        else:
            report.problems.append(FileProblem("torn_tail", p.offset, p.bytes_after, p.reason))
    # Within a file, block ids must strictly increase too.
    prev: int | None = None
    for block in scan.blocks:
        if prev is not None and block.first_id <= prev:
            report.problems.append(
                FileProblem(
                    "corruption",
                    block.offset,
                    0,
                    f"id {block.first_id} does not follow {prev} (ids must strictly increase)",
                )
            )
        prev = block.last_id
    return report


def validate(directory: str | os.PathLike[str]) -> Validation:
    """Scan every file of a data dir and check ids across files (raises DataDirError)."""
    d = Path(directory)
    segment_paths, quarantine_paths = find_segments(d)
    segments = [
        scan_file(p, d, "active" if p.name == ACTIVE_NAME else "rotated") for p in segment_paths
    ]
    quarantined = [scan_file(p, d, "quarantined") for p in quarantine_paths]
    issues: list[IdIssue] = []
    prev: FileReport | None = None
    for report in segments:
        if report.first_id is None or report.last_id is None:
            continue
        if prev is not None and prev.last_id is not None:
            if report.first_id <= prev.last_id:
                issues.append(
                    IdIssue("overlap", prev.path, report.path, prev.last_id, report.first_id)
                )
            elif report.first_id > prev.last_id + 1:
                issues.append(IdIssue("gap", prev.path, report.path, prev.last_id, report.first_id))
        prev = report
    validation = Validation(str(d), segments, quarantined, issues)
    try:
        validation.format_line, validation.format = validation_format(d)
    except (LogCasterError, OSError) as exc:
        validation.format_line = f"format: unknown ({exc})"
        validation.format = {"version": None, "current": CURRENT, "error": str(exc)}
    return validation


def format_validation(v: Validation) -> str:
    """Human-readable report: one line per file, then its problems indented."""
    lines = [f"data dir {v.directory}"]
    if v.format_line:
        lines.append(f"  {v.format_line}")
    width = max((len(f.path) for f in v.segments + v.quarantined), default=0)

    def file_line(f: FileReport) -> None:
        status = "ok" if f.ok else f"{len(f.problems)} problem(s)"
        lines.append(
            f"  {f.path:<{width}}  blocks={f.blocks} events={f.events} ids={f.id_range()} "
            f"mode={f.mode_summary()}  {status}"
        )
        lines.extend(f"      {f.path}: {p.describe()}" for p in f.problems)

    if not v.segments:
        lines.append("  (no segment files)")
    for f in v.segments:
        file_line(f)
    if v.quarantined:
        lines.append(f"quarantined ({len(v.quarantined)} file(s), set aside; not counted):")
        for f in v.quarantined:
            file_line(f)
    lines.extend(f"  {issue.describe()}" for issue in v.id_issues)
    files = len(v.segments)
    if v.ok:
        lines.append(
            f"OK: {files} file(s), {v.events} events, ids "
            f"{v.first_id if v.first_id is not None else '-'}.."
            f"{v.last_id if v.last_id is not None else '-'}"
        )
    else:
        bad = sum(1 for f in v.segments if not f.ok)
        lines.append(
            f"FAILED: {v.problem_count} problem(s) in {files} file(s) "
            f"({bad} damaged file(s)); {v.events} good events"
        )
    return "\n".join(lines) + "\n"


# -- inspect ------------------------------------------------------------------


@dataclass(slots=True)
class Inspection:
    directory: str
    files: list[FileReport]
    quarantined: list[FileReport]
    events: int
    first_id: int | None
    last_id: int | None
    total_bytes: int  # on disk, segments and quarantine
    oldest_mtime: float | None  # mtime of the first segment (its last write)
    newest_mtime: float | None  # mtime of the last segment
    rotated: int
    compressed: int
    largest_rotated_bytes: int  # data bytes: a lower bound on max_file_bytes at the time
    rotation_times: list[str]  # UTC stamps from the rotated names, in id order
    problems: int
    notes: list[str]
    modes: dict[str, int] = field(default_factory=dict)  # good blocks per mode, all files
    first_received: float | None = None  # receive time of the oldest block
    last_received: float | None = None  # of the newest block

    def to_dict(self) -> dict[str, Any]:
        return {
            "directory": self.directory,
            "events": self.events,
            "first_id": self.first_id,
            "last_id": self.last_id,
            "total_bytes": self.total_bytes,
            "files": [_file_dict(f) for f in self.files],
            "quarantined": [_file_dict(f) for f in self.quarantined],
            "first_file_mtime_utc": _utc(self.oldest_mtime),
            "last_file_mtime_utc": _utc(self.newest_mtime),
            "rotated_files": self.rotated,
            "compressed_files": self.compressed,
            "largest_rotated_bytes": self.largest_rotated_bytes,
            "rotation_times_utc": self.rotation_times,
            "problems": self.problems,
            "notes": self.notes,
            "modes": self.modes,
            "first_received_utc": _utc(self.first_received),
            "last_received_utc": _utc(self.last_received),
        }


def _stamp_of(name: str) -> str | None:
    m = SEGMENT_NAME_RE.fullmatch(name)
    if m is None:
        return None
    s = m[1]  # 20260119T153001.234567Z
    return f"{s[0:4]}-{s[4:6]}-{s[6:8]}T{s[9:11]}:{s[11:13]}:{s[13:]}"  # keeps the Z


def inspect(directory: str | os.PathLike[str]) -> Inspection:
    """A summary of a data dir (raises DataDirError); reads and verifies every file."""
    v = validate(directory)
    files = v.segments
    rotated = [f for f in files if f.kind == "rotated"]
    stamps = [s for s in (_stamp_of(Path(f.path).name) for f in rotated) if s is not None]
    notes = [
        "the fsync policy and rotation limits are server settings and are not recorded "
        "in the data dir; file sizes give a lower bound on max_file_bytes",
        "rotated file names carry the UTC time of their rotation",
    ]
    if v.id_issues:
        notes.extend(i.describe() for i in v.id_issues)
    modes: dict[str, int] = {}
    for f in files:
        for mode, n in f.modes.items():
            modes[mode] = modes.get(mode, 0) + n
    received = [f for f in files if f.first_received is not None]
    return Inspection(
        directory=v.directory,
        files=files,
        quarantined=v.quarantined,
        events=v.events,
        first_id=v.first_id,
        last_id=v.last_id,
        total_bytes=sum(f.size for f in files + v.quarantined),
        oldest_mtime=files[0].mtime if files else None,
        newest_mtime=files[-1].mtime if files else None,
        rotated=len(rotated),
        compressed=sum(1 for f in files if f.compressed),
        largest_rotated_bytes=max((f.data_bytes for f in rotated), default=0),
        rotation_times=stamps,
        problems=v.problem_count,
        notes=notes,
        modes=modes,
        first_received=received[0].first_received if received else None,
        last_received=received[-1].last_received if received else None,
    )


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def format_inspection(i: Inspection) -> str:
    width = max((len(f.path) for f in i.files + i.quarantined), default=0)
    lines = [f"data dir {i.directory}", "files (read order):"]
    if not i.files:
        lines.append("  (none)")
    for f in i.files:
        gz = f" ({_size(f.data_bytes)} uncompressed)" if f.compressed else ""
        lines.append(
            f"  {f.path:<{width}}  {_size(f.size):>10}{gz}  events={f.events} "
            f"ids={f.id_range()} mode={f.mode_summary()}  modified {_utc(f.mtime)}"
        )
    if i.quarantined:
        lines.append("quarantined:")
        lines.extend(
            f"  {f.path:<{width}}  {_size(f.size):>10}  events={f.events} ids={f.id_range()}"
            for f in i.quarantined
        )
    first = i.first_id if i.first_id is not None else "-"
    last = i.last_id if i.last_id is not None else "-"
    lines += [
        f"events: {i.events}  ids {first}..{last}",
        "payload modes: "
        + (", ".join(f"{m} {i.modes[m]} block(s)" for m in MODES if i.modes.get(m)) or "-"),
        f"received: first block {_utc(i.first_received) or '-'}, "
        f"last block {_utc(i.last_received) or '-'}",
        f"bytes on disk: {_size(i.total_bytes)}",
        f"first file last written: {_utc(i.oldest_mtime) or '-'}",
        f"last file last written:  {_utc(i.newest_mtime) or '-'}",
        f"rotated files: {i.rotated} ({i.compressed} gzip-compressed); "
        f"largest {_size(i.largest_rotated_bytes)}",
    ]
    if i.rotation_times:
        lines.append(f"rotations: first {i.rotation_times[0]}, last {i.rotation_times[-1]}")
    lines.append(
        f"problems: {i.problems}"
        + (" (run `logcaster data validate` for details)" if i.problems else "")
    )
    lines.extend(f"note: {n}" for n in i.notes)
    return "\n".join(lines) + "\n"
