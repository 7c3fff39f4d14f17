"""The `logcaster migrate` command: a data directory (DIR) or the scale-out
PostgreSQL schema (`--postgres URL`), exactly one of them per run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from logcaster.datadir.migrate import MigrateError, migrate
from logcaster.datadir.versions import CURRENT
from logcaster.scaleout import schema_cli

EXIT_USAGE = 2
_POSTGRES_ONLY = ("days_ahead", "retention_days", "keyword_index")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    migrate_parser = sub.add_parser(
        "migrate",
        help=(
            f"upgrade a data directory to on-disk format v{CURRENT} (DIR), or create or "
            "upgrade the scale-out PostgreSQL schema (--postgres URL)"
        ),
        description="Give DIR or --postgres URL. docs/data-format.md, docs/scaleout-design.md",
        epilog=(
            "exit status: 0 the directory or schema is current, 2 it cannot be migrated "
            "(in use, not a data directory, newer than this version, database unreachable)"
        ),
    )
    migrate_parser.add_argument(
        "dir", nargs="?", metavar="DIR", help="a data directory (-P DIR) to upgrade in place"
    )
    migrate_parser.add_argument(
        "--dry-run", action="store_true", help="DIR: say what would be done; write nothing"
    )
    migrate_parser.add_argument("--postgres", metavar="URL", help="postgresql://USER@HOST:PORT/DB")
    migrate_parser.add_argument(
        "--days-ahead",
        type=int,
        help=f"--postgres: daily partitions made ahead of today ({schema_cli.DAYS_AHEAD})",
    )
    migrate_parser.add_argument(
        "--retention-days",
        type=int,
        help="--postgres: drop the partitions of days older than this (0: keep all)",
    )
    migrate_parser.add_argument(
        "--keyword-index",
        choices=["on", "off"],
        help="--postgres: make or drop the pg_trgm index on the text (default: leave it)",
    )


def run(args: argparse.Namespace) -> int:
    if (args.dir is None) == (args.postgres is None):
        print(
            "logcaster migrate: give a data directory DIR or --postgres URL"
            + (", not both" if args.dir is not None else ""),
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.postgres is not None:
        if args.dry_run:
            print("logcaster migrate: --dry-run is for a data directory", file=sys.stderr)
            return EXIT_USAGE
        return schema_cli.run(args)
    given = [name for name in _POSTGRES_ONLY if getattr(args, name) is not None]
    if given:
        option = "--" + given[0].replace("_", "-")
        print(f"logcaster migrate: {option} is for --postgres, not DIR", file=sys.stderr)
        return EXIT_USAGE
    try:
        migrate(Path(args.dir), dry_run=args.dry_run, say=_say)
    except MigrateError as exc:
        print(f"logcaster migrate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return 0


def _say(line: str) -> None:
    # Flushed line by line: an interrupted run has said what it finished.
    print(line, flush=True)
