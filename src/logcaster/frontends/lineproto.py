"""The TCP line query protocol (SPEC §6): one command per connection, answer, close.

Compatible with the original LogCaster clients (`echo COUNT | nc host 9998`).
Prefix any command with `JSON` (or add `format=json` to QUERY/FILTER) for one
JSON document instead of text lines. Errors are one `ERROR: …` line, or one
`{"error": "…"}` document for a command that asked for JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import orjson

from logcaster.component import Endpoint, listening, server_endpoint
from logcaster.exceptions import DecryptRefused, QueryBusy, QueryLimitError, QuerySyntaxError
from logcaster.frontends import line_access
from logcaster.frontends.answers import answer_json, answer_text, stats_text
from logcaster.frontends.query_metrics import Outcome, QueryMetrics, outcome_of
from logcaster.log import log_event
from logcaster.metrics.registry import Readings
from logcaster.options import QueryConfig
from logcaster.query.histogram import Histogram, histogram
from logcaster.query.model import Query
from logcaster.query.parser import RECENT_DEFAULT, Command, UnknownCommand, parse_command
from logcaster.query.planner import Answer, Planner, Snapshot
from logcaster.security.guard import Guard, Peer, open_guard
from logcaster.security.neutralize import json_safe, neutral
from logcaster.security.reveal import FieldQueries, check_decrypt
from logcaster.security.roles import ANONYMOUS, Principal
from logcaster.security.tls import HANDSHAKE_TIMEOUT
from logcaster.sinks.memory import MemorySink
from logcaster.sources.connections import ConnectionLimits
from logcaster.store.service import Store

logger = logging.getLogger("logcaster.frontends.lineproto")

MAX_COMMAND_BYTES = 64 * 1024

HELP_LINES = (
    "LogCaster query protocol: send one command line; the server answers and closes.",
    "  COUNT                       events in the memory buffer",
    "  STATS                       Total, Dropped, Current, Clients and more counters",
    "  QUERY key=value ...         search; parameters:",
    "      keyword=TEXT  keywords=a,b,c  operator=AND|OR  regex=RE2",
    "      level=ERROR[,WARN]  service=NAME[,NAME]  time_from=T  time_to=T (unix s or ISO)",
    "      limit=N  order=desc|asc  format=text|json  any other key=value: field equality",
    "      order: by event time, ties by id; desc (default) newest first; limit keeps the first N",
    "      source=memory|store|all (default all with the store on)",
    "      max_count=N  FOUND is exact up to N matches (default query.max_count), then N+",
    "      decrypt=1  encrypted fields in clear (the DECRYPT permission; encrypt.fields)",
    '      quote values with spaces: keyword="pool exhausted"',
    "  SEARCH TEXT                 events containing TEXT",
    "  FILTER key=value ...        like QUERY",
    "  REGEX PATTERN               events matching PATTERN (RE2 syntax, linear time)",
    f"  RECENT [N]                  the newest N events by event time (default {RECENT_DEFAULT})",
    "  CLEAR                       empty the memory buffer only (stored events stay queryable)",
    "  HELP                        this text",
    *line_access.HELP_LINES,
    "Prefix a command with JSON for a JSON answer. Rows: [YYYY-MM-DD HH:MM:SS] first line (UTC),",
    "  syslog without its <PRI> frame, the message added when the line has none,",
    "  control characters escaped (\\x1b, \\r, \\n).",
)

# After the answer: input read and dropped before closing, at most this much, this long.
DISCARD_MAX_BYTES = 16 * 1024 * 1024
DISCARD_WITHIN_S = 2.0

StatsProvider = Callable[[], dict[str, int | float]]


T = TypeVar("T")  # what a query thread returns (QueryService._in_thread)


class QueryService:
    """Executes parsed command lines: counters on the event loop, searches in
    query threads through the planner (memory and store). Counts every front
    end's queries (`observe`, frontends/query_metrics.py)."""

    def __init__(
        self,
        config: QueryConfig,
        memory: MemorySink,
        stats: StatsProvider,
        store: Store | None = None,
    ) -> None:
        self.config = config
        self.memory = memory
        self.stats = stats
        self.planner = Planner(config, memory, store)
        # Query threads: store scans release the GIL, so two use both cores.
        self._pool = ThreadPoolExecutor(config.max_concurrent, thread_name_prefix="query")
        self._waiting = 0
        self.metrics = QueryMetrics()
        # Field encryption's query side (security/reveal.py); None: no field keys.
        self.fields: FieldQueries | None = None

    def observe(self, frontend: str, outcome: Outcome, seconds: float) -> None:
        """Count one answered query request: `frontend` "line" or "http", `outcome`
        from `query_metrics.outcome_of(exc)` ("ok", "error", "busy", "limit",
        "timeout"), `seconds` from the request to its answer."""
        self.metrics.observe(frontend, outcome, seconds)

    def readings(self, out: Readings) -> None:
        self.metrics.readings(out, self.planner.rows_memory, self.planner.rows_store)

    async def answer(self, line: str, principal: Principal = ANONYMOUS) -> str:
        """The full reply to one command line, newline-terminated (logged at debug)."""
        started = time.perf_counter()
        reply, outcome = await self._answer(line, principal)
        seconds = time.perf_counter() - started
        self.observe("line", outcome, seconds)
        log_event(
            logger,
            logging.DEBUG,
            "query",
            command=line.strip()[:200],
            ms=round(seconds * 1000, 3),
            answer=reply[:100].partition("\n")[0],  # "FOUND: 3 matches", "ERROR: ..."
            bytes=len(reply),
        )
        return reply

    async def _answer(self, line: str, principal: Principal) -> tuple[str, Outcome]:
        try:
            command = parse_command(line, self.config)
            if command.query is None:
                return self._execute(command), "ok"
            return await self._search(command, principal), "ok"
        except UnknownCommand as exc:
            empty = line.strip().upper() in ("", "JSON")
            message = f"{'Empty' if empty else 'Unknown'} command. Use HELP for usage."
            failure: Exception = exc
        except QuerySyntaxError as exc:
            message = f"Invalid query syntax: {exc}"
            failure = exc
        except (QueryLimitError, QueryBusy, DecryptRefused) as exc:
            message = str(exc)
            failure = exc
        except Exception as exc:
            # A bug must not look like an empty answer: say so, and log it.
            logger.exception("query_failed", extra={"fields": {"command": line[:200]}})
            message = "internal error while answering the query (see the server log)"
            failure = exc
        return error_answer(message, asks_json(line)), outcome_of(failure)

    async def _search(self, cmd: Command, principal: Principal) -> str:
        assert cmd.query is not None
        return _render(cmd, await self.run(cmd.query, principal))

    async def run(self, query: Query, principal: Principal = ANONYMOUS) -> Answer:
        """Run a parsed query in a query thread (every front end's searches go here).

        Raises QueryBusy when `query.max_concurrent` queries run and
        `query.max_waiting` more wait already; QueryLimitError past a time or
        scan limit; DecryptRefused for `decrypt=1` that `principal` may not
        have. Equality on encrypted fields is asked by their index."""
        fields = self.fields
        if query.decrypt:
            check_decrypt(principal, fields)
        if fields is not None:
            query = fields.seal_query(query)
        return await self._in_thread(partial(self._run, query))

    async def histogram(
        self, query: Query, buckets: int, principal: Principal = ANONYMOUS
    ) -> Histogram:
        """Count a query's matches by time bucket and level (query/histogram.py), in a
        query thread under the same bounds as `run` (busy, limits, sealed fields)."""
        if self.fields is not None:
            query = self.fields.seal_query(query)
        return await self._in_thread(partial(histogram, self.planner, query, buckets=buckets))

    async def _in_thread(self, work: Callable[[Snapshot], T]) -> T:
        """`work` on a snapshot taken now, in a query thread; QueryBusy when
        `query.max_concurrent` run and `query.max_waiting` more wait already."""
        if self._waiting >= self.config.max_concurrent + self.config.max_waiting:
            raise QueryBusy("busy: too many queries running; try again")
        snapshot = self.planner.prepare()
        self._waiting += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, work, snapshot)
        finally:
            self._waiting -= 1

    def _run(self, query: Query, snapshot: Snapshot) -> Answer:
        answer = self.planner.run(query, snapshot)
        fields = self.fields
        if query.decrypt and fields is not None:
            answer = fields.reveal(answer)  # in the query thread: Fernet per marker
        return answer

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _execute(self, cmd: Command) -> str:
        if cmd.verb == "COUNT":
            count = self.memory.count
            return _json({"count": count}) if cmd.json else f"COUNT: {count}\n"
        if cmd.verb == "STATS":
            stats = self.stats()
            if cmd.json:
                return _json(stats)
            return stats_text(stats)
        if cmd.verb == "HELP":
            return _json({"help": list(HELP_LINES)}) if cmd.json else "\n".join(HELP_LINES) + "\n"
        if cmd.verb == "CLEAR":
            removed = self.memory.clear()
            log_event(logger, logging.INFO, "memory_cleared", events=removed)
            return _json({"cleared": removed}) if cmd.json else f"OK: cleared {removed} events\n"
        raise AssertionError(f"unexpected verb {cmd.verb}")


def _render(cmd: Command, answer: Answer) -> str:
    if cmd.json:
        return answer_json(answer).decode() + "\n"
    return answer_text(answer)


def asks_json(line: str) -> bool:
    """Whether a command line asks for JSON (a JSON prefix or format=json), told
    without parsing it: a line that does not parse gets its error in JSON too."""
    head = line.lstrip()[:5]
    prefixed = head[:4].upper() == "JSON" and (len(head) == 4 or head[4].isspace())
    return prefixed or "format=json" in line.lower()


def error_answer(message: str, as_json: bool) -> str:
    """`ERROR: message`, or `{"error": "message"}` for a JSON client, which parses
    every answer it gets."""
    # Neutralised: a message may echo what the client sent (a regex, a value).
    return _json({"error": message}) if as_json else f"ERROR: {neutral(message)}\n"


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return f"query:{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "query"


def _json(doc: dict[str, Any]) -> str:
    return json_safe(orjson.dumps(doc, default=str)).decode() + "\n"


class LineQueryServer:
    """The line query protocol's listener: one command per connection."""

    option = "query.port"

    def __init__(
        self,
        host: str,
        port: int,
        service: QueryService,
        guard: Guard | None = None,
        reload: Callable[[], str | None] | None = None,
        audit_dir: Path | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """`guard`: authentication, roles, audit and rate limits (security/guard.py);
        `reload`: RELOAD's action (the server's, returning a failure or None);
        `audit_dir`: where AUDIT reads from; `tls`: serve TLS with this context."""
        self.host = host
        self.ssl = tls
        self.port = port
        self.hosts: list[str] = []  # the addresses bound, after start
        self._service = service
        self._guard = guard or open_guard("query")
        config = service.config
        self._limits = ConnectionLimits(
            "query", config.max_connections, config.max_connections_per_ip
        )
        self._reload = reload
        self._audit_dir = audit_dir
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        with listening(self.option, self.host, self.port):
            self._server = await asyncio.start_server(
                self._handle,
                self.host,
                self.port,
                limit=MAX_COMMAND_BYTES,
                reuse_address=True,
                ssl=self.ssl,
                ssl_handshake_timeout=HANDSHAKE_TIMEOUT if self.ssl is not None else None,
            )
        bound = server_endpoint(self._server)
        self.port, self.hosts = bound.port, bound.hosts

    @property
    def endpoint(self) -> Endpoint | None:
        return Endpoint(self.port, self.hosts) if self._server is not None else None

    def readings(self, out: Readings) -> None:
        # Refusals over the caps; the queries themselves: QueryService.readings.
        # (Open query connections stay out of `Clients`, the seed's count of senders.)
        self._limits.readings(out)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        timeout = self._service.config.timeout
        peer = _peer(writer)
        opened = time.monotonic()
        log_event(logger, logging.DEBUG, "connection_opened", peer=peer)
        client = Peer.of(writer.get_extra_info("peername"))
        admitted = self._limits.admit(client.address, len(self._tasks) - 1)
        try:
            if admitted:
                reply = await self._read_and_answer(reader, timeout, client)
            else:
                reply = "ERROR: too many connections\n"
            if writer.is_closing():
                return  # the client reset the connection while its query ran
            writer.write(reply.encode())
            await asyncio.wait_for(writer.drain(), timeout)
            # Half-close, then read what the client still sends (the rest of a
            # command too long, more lines): closing with unread input makes the
            # kernel reset the connection, and the client would lose the answer.
            if writer.can_write_eof() and not writer.is_closing():
                writer.write_eof()
            await _discard_input(reader, DISCARD_MAX_BYTES, DISCARD_WITHIN_S)
        except (ConnectionError, TimeoutError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
            if task is not None:
                self._tasks.discard(task)
            if admitted:
                self._limits.release(client.address)
            seconds = round(time.monotonic() - opened, 3)
            log_event(logger, logging.DEBUG, "connection_closed", peer=peer, seconds=seconds)

    async def _read_and_answer(
        self, reader: asyncio.StreamReader, wait_s: float, peer: Peer
    ) -> str:
        """Read the command (after an AUTH line, if any), check access, answer."""
        started = time.monotonic()
        line = await _read_line(reader, wait_s)
        if not isinstance(line, str):
            return line.message
        guard = self._guard
        principal = ANONYMOUS
        token = line_access.token_of(line)
        if token is not None:
            # One request per connection: the command's own entry records who.
            found = await guard.authenticate(token, peer, record=False)
            if found is None:
                return f"ERROR: {line_access.UNAUTHORIZED}\n"
            principal = found
            line = await _read_line(reader, max(0.1, wait_s - (time.monotonic() - started)))
            if not isinstance(line, str):
                return line.message
        elif guard.required:
            if line.strip():  # a connection that sent nothing (a health check) tried nothing
                guard.refuse(peer, "no token")
            return error_answer(line_access.UNAUTHORIZED, asks_json(line))
        # The rate first: a refused command did not run, and is not audited as if.
        wait = guard.limits.query((peer.address, principal.name), "query")
        if wait > 0:
            return error_answer(f"rate limited: try again in {wait:.1f} s", asks_json(line))
        if not line_access.permitted(guard, principal, line, peer):
            return error_answer(line_access.UNAUTHORIZED, asks_json(line))
        verb, rest, as_json = line_access.verb_of(line)
        if verb == "AUDIT":
            return await line_access.audit_answer(self._audit_dir, rest, as_json)
        if verb == "RELOAD":
            return line_access.reload_answer(self._reload, as_json, guard, principal, peer)
        return await self._service.answer(line, principal)

    async def stop(self, deadline: float | None = None) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            await self._server.wait_closed()

    async def close(self) -> None:
        return None


class _NoLine(NamedTuple):
    message: str  # the answer instead


async def _read_line(reader: asyncio.StreamReader, wait_s: float) -> str | _NoLine:
    try:
        raw = await asyncio.wait_for(reader.readuntil(b"\n"), wait_s)
    except asyncio.IncompleteReadError as exc:
        raw = exc.partial  # a command without a trailing newline, then EOF
    except asyncio.LimitOverrunError:
        return _NoLine(f"ERROR: Command too long (max {MAX_COMMAND_BYTES} bytes)\n")
    except TimeoutError:
        return _NoLine(f"ERROR: No command received within {wait_s:g} s\n")
    return raw.decode("utf-8", "replace")


async def _discard_input(reader: asyncio.StreamReader, limit: int, within_s: float) -> None:
    """Read and drop input until the client's EOF, `limit` bytes or `within_s` seconds."""
    left = limit
    with contextlib.suppress(TimeoutError, ConnectionError):
        async with asyncio.timeout(within_s):
            while left > 0:
                chunk = await reader.read(min(left, 256 * 1024))
                if not chunk:
                    return
                left -= len(chunk)
