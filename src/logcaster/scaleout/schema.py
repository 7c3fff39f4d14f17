"""The PostgreSQL schema for scale-out, in versioned migrations (`logcaster migrate`).

Each migration is a list of statements run in one transaction with the
version recorded in `logcaster_schema`; `migrate` runs those above the
database's version, in order, under an advisory lock so that two writers
starting at once do not both migrate. Tables are created in the connection's
`search_path` schema (tests use one of their own).

`events` is partitioned by `day` (the day the node received the event, UTC):
retention drops whole partitions, and the unique key `(node, event_id, day)`
includes the partition key, as PostgreSQL requires of a partitioned table's
unique constraints (docs/scaleout-design.md, "Exactly once"). `seen` is the
clients' sessions' dedup table, plain, pruned by day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import psycopg
from psycopg import sql

LOCK_KEY = 0x4C43_5343  # "LCSC": pg_advisory_xact_lock's key for migrations


def _trigram_index(conn: psycopg.Connection) -> None:
    """The keyword index: pg_trgm's GIN operator class, named in whatever schema the
    extension lives (made in `public` when missing: an extension made in the
    migrated schema would go with it, and so would other schemas' indexes)."""
    conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
    row = conn.execute(
        "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'"
    ).fetchone()
    home = row[0] if row is not None else "public"
    conn.execute(
        sql.SQL("CREATE INDEX IF NOT EXISTS events_body_trgm ON events USING gin (body {})").format(
            sql.Identifier(home, "gin_trgm_ops")
        )
    )


Step = str | Callable[[psycopg.Connection], None]

MIGRATIONS: list[list[Step]] = [
    [
        """CREATE TABLE events (
            node bigint NOT NULL,
            event_id bigint NOT NULL,
            day date NOT NULL,
            session uuid,
            seq bigint,
            ts double precision NOT NULL,
            received_at double precision NOT NULL,
            source text NOT NULL,
            level text,
            service text,
            host text,
            request_id text,
            message text NOT NULL,
            body text NOT NULL,
            fields jsonb,
            UNIQUE (node, event_id, day)
        ) PARTITION BY RANGE (day)""",
        "CREATE INDEX events_ts ON events USING brin (ts)",
        "CREATE INDEX events_level_ts ON events (level, ts)",
        "CREATE INDEX events_service_ts ON events (service, ts)",
        "CREATE INDEX events_request_id ON events (request_id) WHERE request_id IS NOT NULL",
        _trigram_index,
        """CREATE TABLE seen (
            session uuid NOT NULL,
            seq bigint NOT NULL,
            day date NOT NULL,
            PRIMARY KEY (session, seq)
        )""",
        "CREATE INDEX seen_day ON seen (day)",
    ],
    # Every attribute of an event has its column: the query node rebuilds events whole.
    # `written_at`: when the writer inserted it (ingest-to-queryable = written_at -
    # received_at, the latency bench/scaleout reports).
    [
        "ALTER TABLE events ADD COLUMN version text",
        "ALTER TABLE events ADD COLUMN pod text",
        "ALTER TABLE events ADD COLUMN written_at double precision"
        " DEFAULT extract(epoch FROM clock_timestamp())",
        # `seen` is pruned by when a line was claimed, not by when a node received
        # it: writers days behind must still catch the resends of what they write.
        "ALTER TABLE seen ADD COLUMN written date NOT NULL DEFAULT current_date",
        "CREATE INDEX seen_written ON seen (written)",
    ],
]


def version_of(conn: psycopg.Connection) -> int:
    """The schema's version: 0 for a database never migrated."""
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS logcaster_schema (version integer NOT NULL)")
        cur.execute("SELECT max(version) FROM logcaster_schema")
        row = cur.fetchone()
    return int(row[0]) if row is not None and row[0] is not None else 0


def migrate(conn: psycopg.Connection, days_ahead: int, today: dt.date | None = None) -> list[int]:
    """Bring the schema to the newest version and make the daily partitions from
    `today` to `days_ahead` days after; return the versions applied."""
    applied: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        current = version_of(conn)
        if current > len(MIGRATIONS):
            raise psycopg.DataError(
                f"the database's schema is version {current}, newer than this "
                f"LogCaster's {len(MIGRATIONS)}: upgrade LogCaster"
            )
        for version, statements in enumerate(MIGRATIONS, start=1):
            if version <= current:
                continue
            for step in statements:
                if isinstance(step, str):
                    conn.execute(step)  # our own literals
                else:
                    step(conn)
            conn.execute("INSERT INTO logcaster_schema (version) VALUES (%s)", (version,))
            applied.append(version)
        ensure_partitions(conn, today or dt.datetime.now(dt.UTC).date(), days_ahead)
    return applied


def partition_name(day: dt.date) -> str:
    return f"events_{day:%Y%m%d}"


def ensure_partitions(conn: psycopg.Connection, first: dt.date, days_ahead: int) -> list[str]:
    """Daily partitions of `events` from `first` to `days_ahead` days after, made
    where missing; return the names made."""
    made: list[str] = []
    for offset in range(days_ahead + 1):
        day = first + dt.timedelta(days=offset)
        name = partition_name(day)
        statement = sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} PARTITION OF events FOR VALUES FROM ({}) TO ({})"
        ).format(sql.Identifier(name), sql.Literal(day), sql.Literal(day + dt.timedelta(days=1)))
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass(%s)", (name,))
            row = cur.fetchone()
            if row is not None and row[0] is None:
                cur.execute(statement)
                made.append(name)
    return made


def drop_partitions_before(conn: psycopg.Connection, first_kept: dt.date) -> list[str]:
    """Drop the daily partitions of days before `first_kept` (retention); return their names."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'events'::regclass"
    ).fetchall()
    dropped: list[str] = []
    for (name,) in rows:
        try:
            day = dt.datetime.strptime(name, "events_%Y%m%d").date()
        except ValueError:
            continue  # not one of ours
        if day < first_kept:
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
            dropped.append(name)
    return sorted(dropped)


def set_keyword_index(conn: psycopg.Connection, on: bool) -> None:
    """Make or drop the trigram index on `body` (`migrate --keyword-index`).

    It serves keyword and regex searches on the query node, and it is most of
    PostgreSQL's cost per inserted row (docs/scaleout.md, "Measured"): without it
    the writers insert about three times as fast and keyword searches scan."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        if on:
            _trigram_index(conn)
        else:
            conn.execute("DROP INDEX IF EXISTS events_body_trgm")
