"""`logcaster migrate --postgres URL`: create or upgrade the scale-out schema.

One line out on success, one line on stderr and exit 2 on failure. Called by
`logcaster.datadir.migrate_main`, which runs the `migrate` command.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

import psycopg

from logcaster.scaleout.schema import (
    MIGRATIONS,
    drop_partitions_before,
    migrate,
    set_keyword_index,
)

EXIT_USAGE = 2
DAYS_AHEAD = 3


def run(args: argparse.Namespace) -> int:
    days_ahead = DAYS_AHEAD if args.days_ahead is None else args.days_ahead
    retention_days = args.retention_days or 0
    if not 0 <= days_ahead <= 366:
        print("logcaster: --days-ahead must be 0 to 366", file=sys.stderr)
        return EXIT_USAGE
    if retention_days < 0:
        print("logcaster: --retention-days must be 0 or more", file=sys.stderr)
        return EXIT_USAGE
    dropped: list[str] = []
    try:
        with psycopg.connect(args.postgres, connect_timeout=10) as conn:
            applied = migrate(conn, days_ahead)
            if args.keyword_index is not None:
                set_keyword_index(conn, args.keyword_index == "on")
            if retention_days:
                today = dt.datetime.now(dt.UTC).date()
                with conn.transaction():
                    first_kept = today - dt.timedelta(days=retention_days)
                    dropped = drop_partitions_before(conn, first_kept)
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"logcaster: cannot migrate: {reason}", file=sys.stderr)
        return EXIT_USAGE
    done = f"applied {', '.join(map(str, applied))}" if applied else "nothing to apply"
    print(f"schema version {len(MIGRATIONS)} ({done}); partitions to {days_ahead} days ahead")
    if dropped:
        print(f"dropped {len(dropped)} partitions: {', '.join(dropped)}")
    return 0
