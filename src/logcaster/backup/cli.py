"""`logcaster backup` and `logcaster restore`: their flags (light: every CLI start
imports this); the commands themselves are backup/commands.py."""

from __future__ import annotations

from typing import Any


def add_parsers(sub: Any) -> None:
    backup = sub.add_parser(
        "backup",
        help="write a consistent snapshot of a data directory to a tar archive (docs/backup.md)",
        epilog="exit status: 0 written, 2 nothing written (one line on stderr says why)",
    )
    backup.add_argument("dir", help="the data directory (persist.dir); the server may be running")
    backup.add_argument("out", help="the archive to write, or - for stdout (.zst: zstd)")
    backup.add_argument(
        "-c",
        "--config",
        help="the server's YAML configuration, to find the token file, audit log and forward "
        "spools it keeps outside DIR (default: $LOGCASTER_CONFIG)",
    )
    backup.add_argument("--zstd", action="store_true", help="compress with zstd (also by .zst)")
    backup.add_argument("--level", type=int, default=3, help="zstd level, 1-19 (default 3)")
    shown = backup.add_mutually_exclusive_group()
    shown.add_argument(
        "--progress", action="store_true", help="show progress on stderr (default: on a terminal)"
    )
    shown.add_argument("--no-progress", action="store_true", help="never show progress")

    restore = sub.add_parser(
        "restore",
        help="verify a backup archive, then write it into an empty data directory",
        epilog="exit status: 0 restored, 2 nothing written (one line on stderr says why)",
    )
    restore.add_argument("archive", help="the archive (tar or tar.zst), or - for stdin")
    restore.add_argument("dir", help="the data directory to create (must be empty or missing)")
    restore.add_argument("--force", action="store_true", help="replace what a non-empty DIR holds")
