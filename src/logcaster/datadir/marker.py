"""The FORMAT marker files: one small JSON object naming a format version.

`DIR/FORMAT` holds `{"format": N}`, the data directory's format;
`DIR/index/FORMAT` holds `{"index": N}` and each spool directory's `FORMAT`
`{"spool": N}`, the version of those files' own layout (docs/data-format.md).
A marker is written whole or not at all (tmp, fsync, rename, fsync of the
directory), so a crash never leaves a half-written one. Readers ignore keys
they do not know: a later version may add some without breaking this one's
refusal message.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from logcaster.durable_file import replace_durably
from logcaster.exceptions import StorageError

MARKER_NAME = "FORMAT"
_MAX_MARKER_BYTES = 4096  # a marker is a few dozen bytes; more is not ours


class MarkerError(StorageError):
    """A FORMAT file that cannot be read or does not hold a version (one line)."""


def read_marker(directory: Path, key: str) -> int | None:
    """The version under `key` in `directory/FORMAT`, None when there is no marker."""
    path = directory / MARKER_NAME
    try:
        with open(path, "rb") as f:
            raw = f.read(_MAX_MARKER_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise MarkerError(f"cannot read {path}: {exc.strerror or exc}", path=str(path)) from exc
    try:
        doc = orjson.loads(raw) if len(raw) <= _MAX_MARKER_BYTES else None
    except orjson.JSONDecodeError:
        doc = None
    version = doc.get(key) if isinstance(doc, dict) else None
    # bool is an int to Python; a marker saying `true` is not a version.
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        shown = raw[:60].decode("utf-8", "replace")
        raise MarkerError(
            f'{path} is not a format marker (expected {{"{key}": N}}, found {shown!r})',
            path=str(path),
        )
    return version


def write_marker(directory: Path, key: str, version: int) -> None:
    """Replace `directory/FORMAT` with `{key: version}`, durably; StorageError on failure."""
    path = directory / MARKER_NAME
    try:
        replace_durably(path, orjson.dumps({key: version}) + b"\n")
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}", path=str(path)) from exc


def ensure_marker(directory: Path, key: str, version: int, what: str) -> None:
    """For the owner of a piece at open: write the marker if there is none; a
    marker of another version is a StorageError naming both (never overwritten)."""
    found = read_marker(directory, key)
    if found is None:
        write_marker(directory, key, version)
    elif found != version:
        raise StorageError(
            f"{directory}: {what} format {found}, this version reads {what} format {version}"
            + (" (run `logcaster migrate` on the data directory)" if found < version else ""),
            path=str(directory / MARKER_NAME),
        )
