"""The query node's history source: LogCaster's `Query` answered from PostgreSQL.

`History.search` turns the query into one WHERE clause over `events`
(scaleout/schema.py) and answers with the same semantics as the embedded
store (query/model.py, query/planner.py):

    levels / services      level = ANY(%s) / service = ANY(%s)
    time_from / time_to    ts >= %s / ts <= %s (inclusive)
    keywords               body LIKE '%kw%' (%, _ and \\ escaped: matched literally,
                           case-sensitive like the embedded store), all of them
                           (AND) or any (OR); pg_trgm's GIN index serves keywords
                           of 3 characters or more
    regex                  body ~ %s (rewritten from RE2 to ARE, below)
    host, pod, version,    the column: host = %s, ... (the names in ATTRIBUTES)
    source, message
    request_id             as any other field, and the column (its index): the
                           writer's first of request_id, trace_id, ... (rows.py)
    any other field        fields->>name = %s (a JSON boolean compares as Python
                           writes it: `True`, `False`)
    SEALED_PREFIX values   fields->>name LIKE 'enc:v1:…%' (a prefix, escaped),
                           for every name, as the embedded store does

Rows are ordered `ts DESC, event_id DESC, node DESC` (ASC for order=asc) with
`LIMIT limit`; the count is `SELECT count(*) FROM (SELECT 1 … LIMIT
max_count + 1)`, exact up to max_count + 1 (the caller caps, as for the
store); it is skipped when the rows already hold every match. Both run in one
REPEATABLE READ, READ ONLY transaction: one snapshot.

Differences from the embedded store:
- Regexes run on PostgreSQL's engine (POSIX ARE), not RE2. `to_are` rewrites
  what differs most: RE2's leading flags (i, m, s) become ARE's, `.` does not
  match a newline unless (?s), `\\b` `\\B` `\\z` become `\\y` `\\Y` `\\Z`. Other RE2
  syntax ARE lacks (`\\pL`, `\\Q…\\E`, `(?P<name>…)`, flags after the start) is
  refused by PostgreSQL: QuerySyntaxError with its reason (an invalid pattern
  too). `\\w` follows the database's locale (é is a word character), RE2's is
  ASCII. ARE's extra syntax (back references, lookaround) never arrives: the
  planner checks every pattern with RE2 first (query/limits.py).
- A structured (object or array) field compares as its JSON text, not as
  Python's repr; a number as PostgreSQL's numeric text (1e-07 is 0.0000001).
- PostgreSQL's text holds no NUL character: a keyword, value or regex with one
  matches nothing.

Bounds: each statement runs under `SET LOCAL statement_timeout`, the time left
of the search's `timeout` (a cancel is QueryTimeout); at most `limit` rows and
a count of max_count + 1 are read; at most `connections` connections are
open (a lock and a list, opened on demand; a search waits for one within its
timeout). A connection that fails (OperationalError: a restarted server, a
terminated backend) is discarded and the search retried once on a new one.
Partitions are by the day received, not by `ts`: a time range does not prune
them, the BRIN index on `ts` narrows the scan instead.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg import errors, sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.pq import TransactionStatus
from psycopg.rows import TupleRow

from logcaster.event import Event
from logcaster.exceptions import LogCasterError, QueryLimitError, QuerySyntaxError, QueryTimeout
from logcaster.query.model import ATTRIBUTES, SEALED_PREFIX, Query

T = TypeVar("T")
SCHEMA_VERSION = 2  # the first with every attribute's column (version, pod)
APPLICATION_NAME = "logcaster-history"  # in pg_stat_activity, unless the URL names one

Connection = psycopg.Connection[TupleRow]
# A search's: rows and count statements, their parameters, limit, max_count, timeout.
Statements = tuple[sql.Composed, sql.Composed, list[Any], int, int, float]

COLUMNS = sql.SQL(
    "node, event_id, received_at, source, body, message, ts, level, service, version, "
    "host, pod, fields"
)


class HistoryError(LogCasterError):
    """PostgreSQL cannot serve as history (`check`): unreachable, or not migrated."""


class HistoryUnavailable(QueryLimitError):
    """A search PostgreSQL could not answer (a QueryLimitError: every front end
    answers it as `ERROR: ...`)."""


@dataclass(frozen=True, slots=True)
class HistoryResult:
    rows: list[Event]
    count: int  # exact matches up to max_count + 1 (the caller caps)


class History:
    """PostgreSQL's `events` as a query source; thread-safe."""

    def __init__(self, url: str, *, timeout: float, connections: int = 4) -> None:
        if connections < 1:
            raise ValueError("connections must be at least 1")
        self.where = display_url(url)
        self.timeout = timeout
        self.size = connections
        try:
            params = conninfo_to_dict(url)
            params.setdefault("application_name", APPLICATION_NAME)
            self._conninfo = make_conninfo("", **params)
        except psycopg.Error:
            self._conninfo = url  # connecting reports what is wrong with it
        self._cond = threading.Condition()
        self._idle: list[Connection] = []
        self._open = 0  # idle + in use
        self._closed = False

    def check(self) -> None:
        """Connect once and check the schema's version; HistoryError if unusable."""
        try:
            conn = self._connect(self.timeout)
        except psycopg.Error as exc:
            raise HistoryError(f"{self.where}: cannot connect: {reason(exc)}") from None
        try:
            with conn.transaction():
                row = conn.execute("SELECT to_regclass('logcaster_schema')::text").fetchone()
                version = 0
                if row is not None and row[0] is not None:
                    row = conn.execute("SELECT max(version) FROM logcaster_schema").fetchone()
                    version = int(row[0]) if row is not None and row[0] is not None else 0
        except psycopg.Error as exc:
            raise HistoryError(f"{self.where}: {reason(exc)}") from None
        finally:
            conn.close()
        if version < SCHEMA_VERSION:
            raise HistoryError(f"{self.where}: schema version {version}, run logcaster migrate")

    def search(self, query: Query, *, limit: int, max_count: int, timeout: float) -> HistoryResult:
        """The query's first `limit` rows in its order and its count up to max_count + 1."""
        deadline = time.monotonic() + timeout
        where, params = where_clause(query)
        direction = sql.SQL("ASC" if query.order == "asc" else "DESC")
        rows_sql = sql.SQL(
            "SELECT {} FROM events WHERE {} ORDER BY ts {d}, event_id {d}, node {d} LIMIT %s"
        ).format(COLUMNS, where, d=direction)
        count_sql = sql.SQL(
            "SELECT count(*) FROM (SELECT 1 FROM events WHERE {} LIMIT %s) AS matches"
        ).format(where)
        statements = (rows_sql, count_sql, params, max(0, limit), max(0, max_count), timeout)
        return self._attempt(lambda conn: self._run(conn, statements, deadline), deadline, timeout)

    def matches(
        self, query: Query, *, max_rows: int, timeout: float
    ) -> list[tuple[float, str | None]]:
        """(ts, level) of every match, for the dashboard's histogram; QueryLimitError
        past `max_rows` (query.max_scan), as the embedded histogram."""
        deadline = time.monotonic() + timeout
        where, params = where_clause(query)
        statement = sql.SQL("SELECT ts, level FROM events WHERE {} LIMIT %s").format(where)

        def run(conn: Connection) -> list[tuple[float, str | None]]:
            with conn.transaction(), conn.cursor() as cur:
                _statement_timeout(cur, deadline, timeout)
                cur.execute(statement, [*params, max_rows + 1])
                rows = [(float(ts), level) for ts, level in cur.fetchall()]
            if len(rows) > max_rows:
                raise QueryLimitError(f"query exceeded its scan limit of {max_rows} events")
            return rows

        return self._attempt(run, deadline, timeout)

    def _attempt(self, run: Callable[[Connection], T], deadline: float, timeout: float) -> T:
        """`run` on a pooled connection; once more on a new one if the first broke."""
        for attempt in (1, 2):
            conn = self._acquire(deadline, timeout, fresh=attempt > 1)
            broken = False
            try:
                return run(conn)
            except errors.QueryCanceled:
                raise _timeout(timeout) from None
            except errors.InvalidRegularExpression as exc:
                raise QuerySyntaxError(f"bad regex: {reason(exc)}") from None
            except psycopg.OperationalError as exc:
                broken = True
                if attempt > 1 or time.monotonic() >= deadline:
                    raise HistoryUnavailable(f"{self.where}: {reason(exc)}") from None
            except psycopg.Error as exc:
                raise HistoryUnavailable(f"{self.where}: {reason(exc)}") from None
            finally:
                self._release(conn, broken)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Close the idle connections now, those in use when their search ends."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._cond.notify_all()
        for conn in idle:
            conn.close()

    def _run(self, conn: Connection, statements: Statements, deadline: float) -> HistoryResult:
        rows_sql, count_sql, params, limit, max_count, timeout = statements
        events: list[Event] = []
        with conn.transaction(), conn.cursor() as cur:
            if limit > 0:
                _statement_timeout(cur, deadline, timeout)
                cur.execute(rows_sql, [*params, limit])
                events = [to_event(row) for row in cur.fetchall()]
            if limit > 0 and len(events) < limit:
                count = min(len(events), max_count + 1)  # every match is a row
            else:
                _statement_timeout(cur, deadline, timeout)
                cur.execute(count_sql, [*params, max_count + 1])
                row = cur.fetchone()
                count = int(row[0]) if row is not None else 0
        return HistoryResult(events, count)

    def _connect(self, timeout: float) -> Connection:
        conn = psycopg.connect(
            self._conninfo,
            autocommit=True,  # transactions are explicit: conn.transaction()
            connect_timeout=max(2, math.ceil(timeout)),  # libpq's least is 2 s
            prepare_threshold=None,  # every plan for its own values (partitions, trigrams)
        )
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        return conn

    def _acquire(self, deadline: float, timeout: float, *, fresh: bool) -> Connection:
        """An idle connection, else a new one while under `size`, else wait for
        one; `fresh`: a new one (an idle one is closed to make room if needed)."""
        stale: Connection | None = None
        with self._cond:
            while True:
                if self._closed:
                    raise HistoryUnavailable(f"{self.where}: history closed")
                if self._idle and not fresh:
                    return self._idle.pop()
                if self._open < self.size:
                    self._open += 1
                    break
                if self._idle:  # fresh: its slot is reused
                    stale = self._idle.pop(0)
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _timeout(timeout)
                self._cond.wait(left)
        if stale is not None:
            stale.close()
        try:
            return self._connect(min(self.timeout, max(0.0, deadline - time.monotonic())))
        except BaseException as exc:
            with self._cond:
                self._open -= 1
                self._cond.notify()
            if isinstance(exc, psycopg.Error):
                raise HistoryUnavailable(f"{self.where}: cannot connect: {reason(exc)}") from None
            raise

    def _release(self, conn: Connection, broken: bool) -> None:
        idle = not (broken or conn.broken or conn.closed)
        idle = idle and conn.info.transaction_status == TransactionStatus.IDLE
        with self._cond:
            idle = idle and not self._closed
            if idle:
                self._idle.append(conn)
            else:
                self._open -= 1
            self._cond.notify()
        if not idle:
            conn.close()


def where_clause(query: Query) -> tuple[sql.Composable, list[Any]]:
    """The query's tests as one SQL condition and its parameters, in order."""
    parts: list[sql.Composable] = []
    params: list[Any] = []

    def add(test: str | sql.Composable, *values: Any) -> None:
        if any(isinstance(v, str) and "\x00" in v for v in values):
            test, values = "FALSE", ()  # PostgreSQL's text holds no NUL: nothing matches
        parts.append(sql.SQL(test) if isinstance(test, str) else test)
        params.extend(values)

    if query.levels:
        add("level = ANY(%s)", sorted(query.levels))
    if query.services:
        add("service = ANY(%s)", sorted(query.services))
    if query.time_from is not None:
        add("ts >= %s", float(query.time_from))
    if query.time_to is not None:
        add("ts <= %s", float(query.time_to))
    for name, value in query.fields:
        if value.startswith(SEALED_PREFIX):
            add("fields->>%s::text LIKE %s", name, like_escape(value) + "%")
        elif name in ATTRIBUTES:
            add(sql.SQL("{} = %s").format(sql.Identifier(name)), value)
        else:
            if name == "request_id" and len(value) <= 200:
                # The indexed column narrows; it may hold another id field (trace_id,
                # ...) or a cut one (200 characters): the fields test decides.
                add("request_id = %s", value)
            # A JSON boolean reads as Python writes it (True, False): model.py's str().
            add(
                "CASE jsonb_typeof(fields->%s::text) WHEN 'boolean' THEN initcap(fields->>%s::text)"
                " ELSE fields->>%s::text END = %s",
                name,
                name,
                name,
                value,
            )
    if query.keywords:
        start = len(parts)
        for word in query.keywords:
            add("body LIKE %s", "%" + like_escape(word) + "%")
        joiner = sql.SQL(" AND " if query.operator == "AND" else " OR ")
        words = joiner.join(parts[start:])
        parts[start:] = [sql.SQL("({})").format(words)]
    if query.regex is not None:
        add("body ~ %s", to_are(query.regex))
    if not parts:
        return sql.SQL("TRUE"), params
    return sql.SQL(" AND ").join(parts), params


def like_escape(text: str) -> str:
    """`text` as a LIKE pattern matching itself only (LIKE's escape is the backslash)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_LEADING_FLAGS = re.compile(r"\(\?([ims]+)\)")
_ESCAPES = {"b": r"\y", "B": r"\Y", "z": r"\Z"}  # RE2's word boundaries and end of text


def to_are(pattern: str) -> str:
    """An RE2 pattern as the PostgreSQL ARE that means the same, where the two
    differ most: leading flags, `.` and newlines, `\\b` `\\B` `\\z`. The rest is
    left as it is (PostgreSQL refuses what it cannot read)."""
    flags = ""
    found = _LEADING_FLAGS.match(pattern)
    if found is not None:
        flags, pattern = found[1], pattern[found.end() :]
    # RE2 (?m): ^ and $ at line ends, as ARE's w ("inverse partial newline-sensitive").
    options = ("i" if "i" in flags else "") + ("w" if "m" in flags else "")
    dot = "." if "s" in flags else r"[^\n]"  # RE2's `.` skips newlines unless (?s)
    out: list[str] = [f"(?{options})"] if options else []
    i, n = 0, len(pattern)
    bracket = -1  # inside [...]: where its members start (a `]` there is one)
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            pair = pattern[i : i + 2]
            out.append(pair if bracket >= 0 else _ESCAPES.get(pattern[i + 1], pair))
            i += 2
            continue
        if bracket >= 0:
            if c == "[" and pattern.startswith(":", i + 1):  # [:alpha:]
                end = pattern.find(":]", i + 2)
                if end >= 0:
                    out.append(pattern[i : end + 2])
                    i = end + 2
                    continue
            if c == "]" and i > bracket:
                bracket = -1
        elif c == "[":
            bracket = i + 2 if pattern.startswith("^", i + 1) else i + 1
            out.append(pattern[i:bracket])
            i = bracket
            continue
        elif c == ".":
            c = dot
        out.append(c)
        i += 1
    return "".join(out)


def to_event(row: TupleRow) -> Event:
    """An `events` row (COLUMNS) as the Event the writer stored."""
    node, event_id, received_at, source, body, message, ts, level, service = row[:9]
    version, host, pod, fields = row[9:]
    fields = dict(fields) if isinstance(fields, dict) else {}
    # The node id is stored as a signed bigint; shown as its unsigned 64 bits.
    fields.setdefault("node", f"{int(node) & 0xFFFF_FFFF_FFFF_FFFF:016x}")
    return Event(int(event_id), float(received_at), source, body, message, float(ts), level,
                 service, version, host, pod, fields)  # fmt: skip


def display_url(url: str) -> str:
    """The URL without its password or options, for messages: postgresql://user@host:port/db."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error:
        return "postgresql://?"
    user = f"{params['user']}@" if params.get("user") else ""
    port = f":{params['port']}" if params.get("port") else ""
    return f"postgresql://{user}{params.get('host') or ''}{port}/{params.get('dbname') or ''}"


def reason(exc: BaseException) -> str:
    """An error's first line (PostgreSQL's primary message where it has one)."""
    if isinstance(exc, psycopg.Error) and exc.diag.message_primary:
        return str(exc.diag.message_primary)
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _statement_timeout(cur: psycopg.Cursor[TupleRow], deadline: float, timeout: float) -> None:
    """Bound the next statement by the search's time left (0 would mean no bound)."""
    left_ms = math.ceil((deadline - time.monotonic()) * 1000)
    if left_ms <= 0:
        raise _timeout(timeout)
    cur.execute(sql.SQL("SET LOCAL statement_timeout = {}").format(sql.Literal(left_ms)))


def _timeout(timeout: float) -> QueryTimeout:
    return QueryTimeout(
        f"query exceeded its time limit of {timeout:g} s (query.timeout) in PostgreSQL"
    )
