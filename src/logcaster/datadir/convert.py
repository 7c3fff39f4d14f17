"""Rewriting one `#LC1` segment file as `#LC2`, crash-safe.

Every block keeps its first id and its texts, in order; the header fields LC1
lacks get documented fills (docs/data-format.md): the receive time is the
file's modification time (the last write into it, so no event's receive time
is later than it really was by more than the file's lifetime), the source is
empty (`-` in the header) and the mode raw (what LC1's payload is).

The new file is written beside the old one (`<name>.migrating`), fsynced,
given the old file's times (retention ages segments by them), then renamed
over it and the directory fsynced: at every moment the name holds either the
whole old file or the whole new one, so a killed migration is rerun and
converts what is still LC1 (a leftover `.migrating` file is removed). A .gz
segment stays gzipped. If damaged bytes had to be skipped, the original is
kept as `quarantine/<name>.lc1`, since they may hold something a person wants.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

from logcaster.datadir.lc1 import Damage, iter_blocks
from logcaster.exceptions import StorageError
from logcaster.segments.blocks import encode_block
from logcaster.segments.lock import fsync_dir
from logcaster.segments.names import QUARANTINE_DIR

TMP_SUFFIX = ".migrating"
KEPT_SUFFIX = ".lc1"


@dataclass(frozen=True, slots=True)
class Converted:
    path: Path
    blocks: int
    events: int
    received: float  # the receive time every block was given
    damaged_bytes: int
    kept: Path | None  # the original, kept in quarantine/ because of damage


def convert_segment(path: Path, *, dry_run: bool = False) -> Converted:
    """Rewrite `path` (LC1) as LC2 in place; `dry_run` only reads and counts."""
    st = path.stat()
    received = st.st_mtime
    gz = path.name.endswith(".gz")
    tmp = path.with_name(path.name + TMP_SUFFIX)
    damage = Damage()
    blocks = events = 0
    with contextlib.ExitStack() as stack:
        src = stack.enter_context(_reader(path, gz))
        raw: io.BufferedWriter | None = None
        out: io.BufferedIOBase | None = None
        if not dry_run:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raw = stack.enter_context(open(tmp, "wb"))
            out = stack.enter_context(gzip.GzipFile(fileobj=raw, mode="wb")) if gz else raw
        try:
            for first_id, texts in iter_blocks(src, damage):
                blocks += 1
                events += len(texts)
                if out is not None:
                    out.write(encode_block(first_id, texts, received=received, mode="raw"))
            if out is not None and raw is not None:
                if out is not raw:
                    out.close()  # the gzip trailer, before the fsync
                raw.flush()
                os.fsync(raw.fileno())
        except BaseException as exc:
            if not dry_run:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
            if isinstance(exc, EOFError | zlib.error):  # a .gz cut short or corrupt
                raise StorageError(f"cannot read {path}: {exc}", path=str(path)) from exc
            raise
    kept = None
    if damage.regions:
        kept = path.parent / QUARANTINE_DIR / (path.name + KEPT_SUFFIX)
    if dry_run:
        return Converted(path, blocks, events, received, damage.bytes, kept)
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    if kept is not None:
        kept.parent.mkdir(exist_ok=True)
        with contextlib.suppress(FileExistsError):  # kept by a run killed after this
            os.link(path, kept)
        fsync_dir(kept.parent)
    os.replace(tmp, path)
    fsync_dir(path.parent)
    return Converted(path, blocks, events, received, damage.bytes, kept)


def _reader(path: Path, gz: bool) -> io.BufferedIOBase:
    return gzip.GzipFile(path, "rb") if gz else open(path, "rb")
