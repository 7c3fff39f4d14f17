"""An archive's manifest, checked whole before a restore places anything, and
where each member goes in DIR.

Where members go: `data/X` to `DIR/X`; files that lived outside the data
directory, `external/<label>/X`, to `DIR/restored/<label>/X`, and the
effective configuration to `DIR/restored/config/effective.yaml`. A backup
leaves `DIR/restored/` out, so those never meet a `data/restored/…` member;
`check_restorable` makes sure a backup never writes an archive whose members
would meet anyway.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

from logcaster.backup.pin import BackupError

RESTORED_DIR = "restored"
FORMAT = "logcaster-backup"
FORMAT_VERSION = 1
_SHA256 = re.compile(r"[0-9a-f]{64}")


def target_of(name: str) -> str:
    """Where archive member `name` goes, relative to DIR; BackupError if it may not."""
    parts = PurePosixPath(name).parts
    if not parts or name.startswith("/") or any(p in ("", ".", "..") or "\\" in p for p in parts):
        raise BackupError(f"the archive holds an unsafe name {name!r}")
    if parts[0] == "data" and len(parts) > 1:
        return "/".join(parts[1:])
    if parts[0] == "external" and len(parts) > 2:
        return "/".join((RESTORED_DIR, *parts[1:]))
    if parts[0] == "config" and len(parts) > 1:
        return "/".join((RESTORED_DIR, *parts))
    raise BackupError(f"the archive holds {name!r}, which is no LogCaster backup member")


def check_restorable(files: list[dict[str, Any]]) -> None:
    """BackupError unless every member goes to a place of its own (else restore refuses)."""
    seen: dict[str, str] = {}
    for entry in files:
        name = str(entry["name"])
        rel = target_of(name)
        if rel in seen:
            raise BackupError(
                f"{seen[rel]} and {name} would be restored to the same place ({rel}): "
                "no archive written"
            )
        seen[rel] = name


def _malformed(what: str) -> BackupError:
    return BackupError(f"the archive's manifest is malformed: {what}")


def check_manifest(manifest: dict[str, Any]) -> tuple[dict[str, tuple[int, str]], dict[str, str]]:
    """The files a manifest lists (name -> (size, sha256)) and its outside files
    (label -> original path); BackupError naming the first thing out of shape."""
    if manifest.get("format") != FORMAT or manifest.get("version") != FORMAT_VERSION:
        raise BackupError(
            f"not a LogCaster backup of format version {FORMAT_VERSION} "
            f"(format {manifest.get('format')!r}, version {manifest.get('version')!r})"
        )
    files = manifest.get("files")
    if not isinstance(files, list):
        raise _malformed(f"`files` is {type(files).__name__}, not a list")
    listed: dict[str, tuple[int, str]] = {}
    for i, entry in enumerate(files):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise _malformed(f"files[{i}] is not an object with a `name`")
        name, size, sha = entry["name"], entry.get("size"), entry.get("sha256")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise _malformed(f"files[{i}] ({name}) has no whole `size`")
        if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
            raise _malformed(f"files[{i}] ({name}) has no `sha256` of 64 hex digits")
        if name in listed:
            raise _malformed(f"{name} is listed twice")
        listed[name] = (size, sha)
    if not any(name.startswith("data/") for name in listed):
        raise BackupError("the archive holds no data/ files: not a backup of a data directory")
    external = manifest.get("external", [])
    if not isinstance(external, list):
        raise _malformed(f"`external` is {type(external).__name__}, not a list")
    outside: dict[str, str] = {}
    for i, item in enumerate(external):
        name = item.get("name") if isinstance(item, dict) else None
        original = item.get("original") if isinstance(item, dict) else None
        label = name.removeprefix("external/") if isinstance(name, str) else ""
        if not name or label == name or not isinstance(original, str):
            raise _malformed(f"external[{i}] is not {{name: external/<label>, original: path}}")
        if label in ("", ".", "..") or "/" in label or "\\" in label:
            raise _malformed(f"external[{i}] has an unsafe label {label!r}")
        outside[label] = original
    return listed, outside
