"""`logcaster migrate` against the machine's PostgreSQL (127.0.0.1:5432, database
`test`, trust auth), each test in a schema of its own, dropped after."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest

from tests.scaleout_helpers import BASE, pg_schema, schema_url


@pytest.fixture
def schema() -> Iterator[str]:
    """A fresh schema; the URL that works in it is `url(schema)`."""
    with pg_schema() as name:
        yield name


def url(schema: str) -> str:
    return schema_url(schema)


def migrate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "logcaster", "migrate", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_migrate_creates_the_schema_once_and_partitions_ahead(schema: str) -> None:
    first = migrate("--postgres", url(schema), "--days-ahead", "2")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("schema version 2 (applied 1, 2)")
    again = migrate("--postgres", url(schema), "--days-ahead", "2")
    assert again.returncode == 0 and "nothing to apply" in again.stdout
    with psycopg.connect(url(schema)) as conn:
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
            )
        }
        today = dt.datetime.now(dt.UTC).date()
        days = [today + dt.timedelta(days=i) for i in range(3)]
        assert {"logcaster_schema", "seen", *(f"events_{d:%Y%m%d}" for d in days)} <= tables
        assert conn.execute("SELECT version FROM logcaster_schema ORDER BY version").fetchall() == [
            (1,),
            (2,),
        ]
        # The unique key holds the partition day: a redelivered event is stored once.
        row = (7, 42, today, 1.0, 1.0, "tcp", "m", "m")
        insert = (
            "INSERT INTO events (node, event_id, day, ts, received_at, source, message, body)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
        )
        conn.execute(insert, row)
        conn.execute(insert, row)
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (1,)


def test_migrate_failures_are_one_line_and_exit_2() -> None:
    done = migrate("--postgres", "postgresql://postgres@127.0.0.1:1/test")
    assert done.returncode == 2
    assert done.stderr.startswith("logcaster: cannot migrate: ") and done.stderr.count("\n") == 1
    bad = migrate("--postgres", BASE, "--days-ahead", "-1")
    assert bad.returncode == 2 and "--days-ahead" in bad.stderr


def test_retention_drops_whole_old_partitions(schema: str) -> None:
    assert migrate("--postgres", url(schema), "--days-ahead", "0").returncode == 0
    old = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=10)
    with psycopg.connect(url(schema), autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE events_{old:%Y%m%d} PARTITION OF events"
            f" FOR VALUES FROM ('{old}') TO ('{old + dt.timedelta(days=1)}')"
        )
    done = migrate("--postgres", url(schema), "--days-ahead", "0", "--retention-days", "5")
    assert done.returncode == 0, done.stderr
    assert f"dropped 1 partitions: events_{old:%Y%m%d}" in done.stdout
    with psycopg.connect(url(schema)) as conn:
        assert conn.execute("SELECT to_regclass(%s)", (f"events_{old:%Y%m%d}",)).fetchone() == (
            None,
        )
        today = dt.datetime.now(dt.UTC).date()
        assert conn.execute("SELECT to_regclass(%s)", (f"events_{today:%Y%m%d}",)).fetchone() != (
            None,
        )


def test_the_keyword_index_can_be_dropped_and_made_again(schema: str) -> None:
    def indexed() -> bool:
        with psycopg.connect(url(schema)) as conn:
            row = conn.execute("SELECT to_regclass('events_body_trgm')").fetchone()
        return row is not None and row[0] is not None

    assert migrate("--postgres", url(schema)).returncode == 0 and indexed()
    assert migrate("--postgres", url(schema), "--keyword-index", "off").returncode == 0
    assert not indexed()
    assert migrate("--postgres", url(schema)).returncode == 0 and not indexed()  # left alone
    assert migrate("--postgres", url(schema), "--keyword-index", "on").returncode == 0
    assert indexed()
