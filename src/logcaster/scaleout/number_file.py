"""A small file holding one number, read at start and replaced atomically (tmp,
fsync, rename, fsync of the directory): the node id, the reserved event ids."""

from __future__ import annotations

from pathlib import Path

from logcaster.durable_file import replace_durably
from logcaster.exceptions import StorageError


def read_number(path: Path, what: str) -> int | None:
    """The number in `path`, None when there is no file; StorageError when it
    cannot be read or does not hold `what`."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc.strerror or exc}", path=str(path)) from exc
    if not text.isdigit():
        raise StorageError(f"{path} does not hold {what}: {text[:40]!r}", path=str(path))
    return int(text)


def save_number(path: Path, value: int) -> None:
    """Replace `path` with `value`, durably; StorageError on failure."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_durably(path, b"%d\n" % value)
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}", path=str(path)) from exc
