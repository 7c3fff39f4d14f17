"""A writer's PostgreSQL side: a set of stream entries in one transaction.

`PgWriter.write(rows)` runs, on one connection, in one transaction:

1. make the daily partitions the rows need, if a day is new to this writer
   (under the migrations' advisory lock: two writers may race to make one);
2. `COPY … FROM STDIN (FORMAT BINARY)` into a TEMP staging table (made once
   per connection, `ON COMMIT DELETE ROWS`);
3. one statement: the rows with a client session first claim their
   (session, line) in `seen` (`ON CONFLICT DO NOTHING RETURNING`), and only the
   rows that won a line — one per line, should a resent line sit in the same
   set as its first copy — go into `events` with the rows without a session,
   `ON CONFLICT DO NOTHING` on (node, event id, day);
4. COMMIT.

A redelivered entry (a writer died after the commit and before XACK) thus
adds nothing, and a line a client resent through another node is stored
once. The writer XACKs only after `write` returned.

Housekeeping (`housekeep`, from the writer's loop every few minutes):
partitions ahead, retention (whole partitions dropped) and the `seen` rows
older than `dedup_days`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import psycopg
from psycopg import sql

from logcaster.scaleout import schema
from logcaster.scaleout.rows import COLUMNS, COPY_TYPES, Row

_COLS = sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
_STAGING = sql.SQL(
    "CREATE TEMP TABLE IF NOT EXISTS staging ("
    + ", ".join(
        f"{c} {t.replace('int8', 'bigint').replace('float8', 'double precision')}"
        for c, t in zip(COLUMNS, COPY_TYPES, strict=True)
    )
    + ") ON COMMIT DELETE ROWS"
)
_COPY = sql.SQL("COPY staging ({}) FROM STDIN (FORMAT BINARY)").format(_COLS)
_SELECT = sql.SQL(", ").join(
    sql.SQL("{}::jsonb").format(sql.Identifier(c)) if c == "fields" else sql.Identifier(c)
    for c in COLUMNS
)
_PICKED = sql.SQL(", ").join(
    sql.SQL("s.{}::jsonb").format(sql.Identifier(c))
    if c == "fields"
    else sql.SQL("s.{}").format(sql.Identifier(c))
    for c in COLUMNS
)
INSERT = sql.SQL(
    """WITH fresh AS (
        INSERT INTO seen (session, seq, day)
        SELECT DISTINCT ON (session, seq) session, seq, day FROM staging
        WHERE session IS NOT NULL ORDER BY session, seq
        ON CONFLICT DO NOTHING
        RETURNING session, seq
    ), picked AS (
        SELECT DISTINCT ON (s.session, s.seq) {picked}
        FROM staging s JOIN fresh f ON f.session = s.session AND f.seq = s.seq
        ORDER BY s.session, s.seq, s.node, s.event_id
    )
    INSERT INTO events ({cols})
    SELECT {select} FROM staging WHERE session IS NULL
    UNION ALL SELECT * FROM picked
    ON CONFLICT DO NOTHING"""
).format(picked=_PICKED, cols=_COLS, select=_SELECT)


class PgWriter:
    """One connection's writes (see the module docstring). Not thread-safe."""

    def __init__(self, url: str, *, days_ahead: int, connect_timeout: float = 5.0) -> None:
        self.url = url
        self.days_ahead = days_ahead
        self._connect_timeout = connect_timeout
        self._conn: psycopg.Connection | None = None
        self._days: set[dt.date] = set()  # partitions known to exist

    def connect(self) -> psycopg.Connection:
        """The connection, opened (and the schema brought up to date) if needed."""
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        self.close()
        conn = psycopg.connect(self.url, connect_timeout=int(self._connect_timeout) or 1)
        try:
            schema.migrate(conn, self.days_ahead)  # a no-op when current
            with conn.transaction():
                conn.execute(_STAGING)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self._days.clear()
        return conn

    def write(self, rows: list[Row]) -> int:
        """Store `rows` in one transaction (see the module docstring); return the
        events inserted (fewer than rows: the rest were stored before)."""
        conn = self.connect()
        days = {row[2] for row in rows} - self._days
        if days:
            self._make_partitions(conn, days)
        try:
            with conn.transaction(), conn.cursor() as cur:
                with cur.copy(_COPY) as copy:
                    copy.set_types(COPY_TYPES)
                    for row in rows:
                        copy.write_row(row)
                cur.execute(INSERT)
                return cur.rowcount
        except psycopg.Error:
            # A partition another writer's retention dropped: make it again next time.
            self._days.clear()
            raise

    def _make_partitions(self, conn: psycopg.Connection, days: Iterable[dt.date]) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (schema.LOCK_KEY,))
            for day in sorted(days):
                schema.ensure_partitions(conn, day, 0)
        self._days.update(days)

    def housekeep(self, retention_days: int, dedup_days: int) -> list[str]:
        """Partitions ahead, retention and `seen`'s pruning; returns the partitions dropped."""
        conn = self.connect()
        today = dt.datetime.now(dt.UTC).date()
        with conn.transaction():
            # DROP TABLE waits for the queries on `events` and every insert waits
            # behind it: give up quickly and try at the next round instead.
            conn.execute("SET LOCAL lock_timeout = '2s'")
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (schema.LOCK_KEY,))
            schema.ensure_partitions(conn, today, self.days_ahead)
            dropped: list[str] = []
            if retention_days > 0:
                dropped = schema.drop_partitions_before(
                    conn, today - dt.timedelta(days=retention_days)
                )
            conn.execute(
                "DELETE FROM seen WHERE written < %s", (today - dt.timedelta(days=dedup_days),)
            )
        self._days.clear()  # some may be gone now
        return dropped

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
