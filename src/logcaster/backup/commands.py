"""Running `logcaster backup DIR OUT` and `logcaster restore ARCHIVE DIR`.

Every failure is one line on stderr and exit status 2, with nothing left
behind: the staging links are removed, a half-written OUT is deleted, a
restore's staging directory is discarded.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO

from logcaster.backup.archive import ArchiveWriter, Progress
from logcaster.backup.manifest import RESTORED_DIR, check_restorable
from logcaster.backup.pin import BackupError, Staging
from logcaster.backup.plan import Member, TreePlan
from logcaster.backup.restore import restore
from logcaster.backup.sources import find_sources, read_loose
from logcaster.config import dump_yaml, load_config
from logcaster.datadir.versions import CURRENT, detect, migrate_command
from logcaster.exceptions import ConfigError, LogCasterError
from logcaster.segments.inspect import DataDirError, find_segments
from logcaster.segments.lock import fsync_dir

EXIT_FAILED = 2
CONFIG_NAME = "config/effective.yaml"


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the clean-up below


def run(args: argparse.Namespace) -> int:
    where = f"logcaster {args.command}"
    signal.signal(signal.SIGTERM, _terminate)
    try:
        if args.command == "backup":
            return backup(args)
        return restore_command(args)
    except ConfigError as exc:
        print(f"{where}: invalid configuration: {exc}", file=sys.stderr)
    except (LogCasterError, DataDirError) as exc:
        print(f"{where}: {exc}", file=sys.stderr)
    except OSError as exc:
        name = f" {exc.filename}" if exc.filename else ""
        print(f"{where}: {exc.strerror or exc}{name}", file=sys.stderr)
    except ValueError as exc:  # a malformed value deep down: still one line
        print(f"{where}: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print(f"{where}: interrupted", file=sys.stderr)
        return 130
    return EXIT_FAILED


class _Output:
    """OUT: stdout, or a file written as OUT.partial and renamed when complete."""

    def __init__(self, out: str, data_dir: Path) -> None:
        self.path: Path | None = None
        self.partial: Path | None = None
        if out == "-":
            if sys.stdout.isatty():
                raise BackupError("refusing to write an archive to a terminal: give a file or pipe")
            self.file: BinaryIO = sys.stdout.buffer
            return
        path = Path(out)
        if path.exists():
            raise BackupError(f"{path} exists: choose another name or remove it")
        if path.parent.resolve().is_relative_to(data_dir.resolve()):
            raise BackupError(f"{path} is inside the data directory {data_dir}")
        self.path = path
        self.partial = path.with_name(path.name + ".partial")
        fd = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self.file = os.fdopen(fd, "wb", buffering=1 << 20)

    def commit(self) -> None:
        self.file.flush()
        if self.path is None or self.partial is None:
            return
        os.fsync(self.file.fileno())
        self.file.close()
        os.rename(self.partial, self.path)
        fsync_dir(self.path.parent)
        self.partial = None

    def discard(self) -> None:
        if self.partial is not None:
            self.file.close()
            self.partial.unlink(missing_ok=True)


def backup(args: argparse.Namespace) -> int:
    data = Path(args.dir)
    try:
        find_segments(data)  # a data directory, not a typo
    except DataDirError as exc:
        raise BackupError(str(exc)) from exc
    _check_format(data)
    config = load_config(args.config, overrides={"persist.dir": str(data)})
    zstd = args.zstd or args.out.endswith(".zst")
    if zstd and not 1 <= args.level <= 19:
        raise BackupError(f"--level must be 1 to 19, not {args.level}")
    trees, loose = find_sources(config, data)
    out = _Output(args.out, data)
    stagings: list[Staging] = []
    writer: ArchiveWriter | None = None
    started = time.monotonic()
    try:
        plans: list[TreePlan] = []
        for tree in trees:
            stagings.append(Staging(tree.root))
            plans.append(TreePlan(tree, stagings[-1]))
            plans[-1].pin()
        pinned_s = time.monotonic() - started
        total = sum(p.size for plan in plans for p in plan.pinned.values())
        total += sum(a.end for plan in plans for a in plan.actives.values())
        shown = args.progress or (not args.no_progress and sys.stderr.isatty())
        progress = Progress(total, shown)
        writer = ArchiveWriter(out.file, zstd_level=args.level if zstd else None, progress=progress)
        for plan in plans:
            writer.add_all(plan.members())
        for item in loose:
            content, mode, mtime = read_loose(item)
            writer.add(Member(item.name, len(content), mode, mtime, data=content))
        effective = dump_yaml(config).encode()
        writer.add(Member(CONFIG_NAME, len(effective), 0o600, time.time(), data=effective))
        check_restorable(writer.files)
        manifest = writer.finish(_header(data, plans, trees[1:], loose))
        out.commit()
        progress.finish()
    finally:
        if writer is not None:
            writer.abort()  # a no-op after finish()
        for staging in stagings:
            staging.close()
        out.discard()
    took = time.monotonic() - started
    mb = writer.bytes / 1e6
    print(
        f"logcaster backup: {len(manifest['files'])} files, {mb:.1f} MB in {took:.1f} s "
        f"({mb / max(took, 1e-6):.0f} MB/s; pinned in {pinned_s * 1000:.0f} ms), "
        f"snapshot id {manifest['snapshot_id']} -> {args.out}{_left_out(data)}",
        file=sys.stderr,
    )
    return 0


def _check_format(data: Path) -> None:
    """Only v2 and the current format can be cut (their #LC2 blocks); an older or
    newer directory has no server running on it, so a plain copy is consistent."""
    found = detect(data)
    if found.version in (None, 2, CURRENT):
        return
    copy = f"copy it as it is while nothing runs on it (`tar -C {data} -cf OUT .`)"
    if found.version < CURRENT:
        raise BackupError(
            f"{data} is format v{found.version} ({found.detail}), which a backup cannot cut: "
            f"{copy}, or `{migrate_command(data)}` first"
        )
    raise BackupError(
        f"{data} is format v{found.version}, newer than v{CURRENT} which this version reads: "
        f"{copy}, or back it up with the release that wrote it"
    )


def _left_out(data: Path) -> str:
    if not (data / RESTORED_DIR).exists():
        return ""
    return f"; left out {data / RESTORED_DIR}/ (a restore's by-products: move them out of DIR)"


def _header(
    data: Path, plans: list[TreePlan], outside: list[Any], loose: list[Any]
) -> dict[str, Any]:
    ids: dict[str, int | None] = {}
    for plan in plans:
        ids.update(plan.snapshot_ids)
    external = [{"name": tree.name, "original": str(tree.root.resolve())} for tree in outside]
    external += [
        {"name": item.name.rpartition("/")[0], "original": str(item.path.resolve())}
        for item in loose
    ]
    return {
        "snapshot_id": ids.get("data"),
        "segment_dirs": ids,
        "source": {"dir": str(data.resolve()), "host": socket.gethostname()},
        "external": external,
    }


def restore_command(args: argparse.Namespace) -> int:
    target = Path(args.dir).resolve()
    if not target.name:
        raise BackupError(f"cannot restore into {target}: name a directory below it")
    if args.archive == "-":
        done = restore(sys.stdin.buffer, target, force=args.force)
    else:
        with open(args.archive, "rb") as raw:
            done = restore(raw, target, force=args.force)
    print(
        f"logcaster restore: {done.files} files, {done.bytes / 1e6:.1f} MB verified and "
        f"restored into {target}, snapshot id {done.manifest.get('snapshot_id')}"
    )
    for label, where in sorted(done.outside.items()):
        print(f"  {label}: {where}")
    print(f"  effective configuration of the backup: {target / 'restored' / CONFIG_NAME}")
    return 0
