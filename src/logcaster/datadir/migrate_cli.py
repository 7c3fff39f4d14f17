"""`logcaster migrate`'s flags (light: every CLI start imports this; the work
is in migrate_main.py): a data directory (DIR) or the scale-out PostgreSQL
schema (`--postgres URL`), exactly one of them per run."""

from __future__ import annotations

import argparse

POSTGRES_ONLY = ("days_ahead", "retention_days", "keyword_index")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    migrate_parser = sub.add_parser(
        "migrate",
        help=(
            "upgrade a data directory to the current on-disk format (DIR), or create or "
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
        metavar="N",
        help="--postgres: daily partitions made ahead of today (default 3)",
    )
    migrate_parser.add_argument(
        "--retention-days",
        type=int,
        metavar="N",
        help="--postgres: drop the partitions of days older than N (0: keep all)",
    )
    migrate_parser.add_argument(
        "--keyword-index",
        choices=["on", "off"],
        help="--postgres: make or drop the pg_trgm index on the text (default: leave it)",
    )
