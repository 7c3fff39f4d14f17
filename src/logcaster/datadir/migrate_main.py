"""`logcaster migrate`: check the flags, then migrate a data directory
(datadir/migrate.py) or the scale-out schema (scaleout/schema_cli.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from logcaster.datadir.migrate import MigrateError, migrate
from logcaster.datadir.migrate_cli import POSTGRES_ONLY
from logcaster.scaleout import schema_cli

EXIT_USAGE = 2


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
    given = [name for name in POSTGRES_ONLY if getattr(args, name) is not None]
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
