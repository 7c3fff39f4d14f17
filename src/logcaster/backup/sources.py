"""What a backup covers, found through the effective configuration.

The data directory is one tree (`data/` in the archive). The configuration may
keep files outside it: `auth.tokens_file`, `encrypt.keys_file` (single files),
`audit.dir` and a forward group's own `dir` (trees). Each of those outside the
data directory becomes `external/<label>/…`, and the manifest records where it
came from; those inside are already part of `data/`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from logcaster.backup.pin import BackupError
from logcaster.config import Config, forward_dir
from logcaster.security.settings import audit_dir, field_keys_path, tokens_path

# A single file outside the data directory is read whole: the token and key files
# are a few KiB; past this it is not one of them.
MAX_LOOSE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Tree:
    name: str  # archive prefix: "data", "external/audit", "external/forward-x"
    root: Path
    segments: bool  # may hold segment directories (active.log and rotated files)


@dataclass(frozen=True, slots=True)
class Loose:
    name: str  # archive name: "external/tokens/tokens.json"
    path: Path


def _inside(path: Path, directory: Path) -> bool:
    return path.resolve().is_relative_to(directory.resolve())


def find_sources(config: Config, data_dir: Path) -> tuple[list[Tree], list[Loose]]:
    """The trees and single files to back up, the data directory first."""
    trees = [Tree("data", data_dir, True)]
    loose: list[Loose] = []
    for label, path in (("tokens", tokens_path(config)), ("field-keys", field_keys_path(config))):
        if path is not None and not _inside(path, data_dir) and path.is_file():
            loose.append(Loose(f"external/{label}/{path.name}", path))
    audit = audit_dir(config)
    if audit is not None and not _inside(audit, data_dir) and audit.is_dir():
        trees.append(Tree("external/audit", audit, False))
    for group in config.forward:
        where = forward_dir(config, group)
        if where is not None and not _inside(where, data_dir) and where.is_dir():
            trees.append(Tree(f"external/forward-{group.name}", where, True))
    return trees, loose


def read_loose(item: Loose) -> tuple[bytes, int, float]:
    """A single file's bytes, permission bits and mtime (it is replaced atomically,
    so one read is one version)."""
    try:
        with open(item.path, "rb") as f:
            st = os.fstat(f.fileno())
            data = f.read(MAX_LOOSE_BYTES + 1)
    except OSError as exc:
        raise BackupError(f"cannot read {item.path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_LOOSE_BYTES:
        raise BackupError(f"{item.path} is over {MAX_LOOSE_BYTES} bytes: not a token or key file")
    return data, st.st_mode & 0o777, st.st_mtime
