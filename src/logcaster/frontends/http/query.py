"""`GET /api/v1/query` (SPEC §6): the line protocol's QUERY over HTTP.

The query string's `key=value` pairs are the QUERY parameters, in order, and go
through the same `build_query` (query/parser.py): the same names, repeats
(`keyword=a&keyword=b`), field equality for any other name, the same limits
and the same error texts. The query runs through the same `QueryService` as
the line protocol (its query threads, `query.max_concurrent` and
`query.max_waiting`), and the answer is `JSON QUERY`'s document
(frontends/answers.py).

Statuses: 400 for what the line protocol answers `ERROR:` (syntax, a
`query.` limit, a time or scan limit reached while running, `decrypt=1`
without field keys), 403 for `decrypt=1` without the DECRYPT permission, 429
with Retry-After for `busy`, 503 while draining or past `http.request_timeout`.

A large answer is written as it is serialized: the head, then the events a
slice at a time (chunked), each write waiting while the client's socket is
full, so a client that stops reading holds at most a slice and the
transport's buffer. The whole request, writing included, is bounded by
`http.request_timeout`: the path is mounted as a stream (the server's own
timeout would answer an error into the middle of a started body), and this
handler applies the bound itself; past it, a started answer is cut off (no
final chunk: the client sees an incomplete body, never a short valid one).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable

from aiohttp import web
from multidict import MultiMapping

from logcaster.exceptions import DecryptRefused, QueryBusy, QueryLimitError, QuerySyntaxError
from logcaster.frontends.answers import SLICE_EVENTS, answer_json, json_chunks
from logcaster.frontends.http.server import json_error, principal_of
from logcaster.frontends.lineproto import QueryService
from logcaster.frontends.query_metrics import outcome_of
from logcaster.options import HttpConfig
from logcaster.query.model import Query
from logcaster.query.parser import build_query
from logcaster.query.planner import Answer
from logcaster.security.roles import Principal

QUERY_PATH = "/api/v1/query"
RETRY_AFTER_S = "1"
# A parameter name the line protocol could carry (its `key=` token): no blanks,
# no `=` or quotes, not empty.
_NAME = re.compile(r"""[^\s="']+""")


class QueryEndpoints:
    """The query route; `Endpoints` for `HttpServer.mount` (mount it with
    `streams=(QUERY_PATH,)`: it bounds its own time, module doc)."""

    def __init__(self, service: QueryService, config: HttpConfig) -> None:
        self._service = service
        self._timeout = config.request_timeout
        self._draining = False

    path = QUERY_PATH

    def routes(self) -> list[web.RouteDef]:
        # No HEAD: aiohttp would send a streamed answer's body to it.
        return [web.get(self.path, self.get, allow_head=False)]

    def drain(self) -> None:
        self._draining = True

    async def get(self, request: web.Request) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + self._timeout
        failure: Exception | None = None
        try:
            answer = await self._run(self.params(request), deadline, principal_of(request))
        except REFUSALS as exc:
            failure = exc
        # Every request is classified here, once (ok or the exception that ended it).
        self._service.observe("http", outcome_of(failure), loop.time() - started)
        if failure is not None:
            return error_response(failure)
        return await self.send(request, answer, deadline)

    def params(self, request: web.Request) -> MultiMapping[str]:
        """The query's parameters (the export's default its limit otherwise)."""
        return request.query

    async def send(
        self, request: web.Request, answer: Answer, deadline: float
    ) -> web.StreamResponse:
        return await send_answer(request, answer, deadline)

    async def _run(
        self, params: MultiMapping[str], deadline: float, principal: Principal
    ) -> Answer:
        if self._draining:
            raise Draining("the server is shutting down")
        query = parse_query(params, self._service)
        async with asyncio.timeout_at(deadline):
            return await self._service.run(query, principal)


class Draining(Exception):
    pass


# What ends a query request with an error answer (error_response); anything
# else is a bug, answered 500 by the server's middleware and logged.
REFUSALS = (QueryBusy, QuerySyntaxError, QueryLimitError, DecryptRefused, TimeoutError, Draining)


def error_response(exc: Exception) -> web.Response:
    """The status and `{"error": ...}` for a refusal, worded as the line protocol's."""
    if isinstance(exc, QueryBusy):
        return json_error(429, str(exc), {"Retry-After": RETRY_AFTER_S})
    if isinstance(exc, QuerySyntaxError):
        return json_error(400, f"Invalid query syntax: {exc}")
    if isinstance(exc, QueryLimitError):  # time, scan and pattern limits
        return json_error(400, str(exc))
    if isinstance(exc, DecryptRefused):
        return json_error(403 if exc.forbidden else 400, str(exc))
    if isinstance(exc, TimeoutError):
        return json_error(503, "request timed out", {"Retry-After": RETRY_AFTER_S})
    return json_error(503, str(exc), {"Retry-After": RETRY_AFTER_S})


def parse_query(params: MultiMapping[str], service: QueryService) -> Query:
    """The `Query` of a request's parameters, as QUERY would build it from the
    same `key=value` pairs; QuerySyntaxError or QueryLimitError."""
    pairs = list(params.items())
    for key, _ in pairs:
        if _NAME.fullmatch(key) is None:
            raise QuerySyntaxError(f"bad parameter name {key!r}")
    query, _ = build_query(pairs, service.config)  # format=: the answer is JSON anyway
    return query


async def send_answer(request: web.Request, answer: Answer, deadline: float) -> web.StreamResponse:
    """The JSON answer: one body when small, else written slice by slice (module doc)."""
    if len(answer.rows) <= SLICE_EVENTS:
        return web.Response(body=answer_json(answer), content_type="application/json")
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    return await stream_chunks(request, response, json_chunks(answer), deadline)


async def stream_chunks(
    request: web.Request,
    response: web.StreamResponse,
    chunks: Iterable[bytes],
    deadline: float,
) -> web.StreamResponse:
    """Send `chunks` as `response`'s chunked body, each write waiting for the
    client, all within `deadline`; past it (or on any error) the started body
    is cut off (the query answer here, the export's NDJSON)."""
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        async with asyncio.timeout_at(deadline):
            for chunk in chunks:
                await response.write(chunk)  # waits while the client's socket is full
                await asyncio.sleep(0)  # other requests run between slices
            await response.write_eof()
    except TimeoutError:
        _cut_off(request)
    except BaseException:
        # A started answer cannot be replaced by an error answer (the server's
        # middleware would write one into the middle of the body): cut it off.
        _cut_off(request)
        raise
    return response


def _cut_off(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()
