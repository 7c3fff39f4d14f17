"""`GET /api/v1/histogram` (SPEC §8): a search's matches counted by time bucket
and level, for the dashboard's chart above its results (query/histogram.py).

The parameters are `/api/v1/query`'s (the same parser, limits and errors),
plus `buckets` (1 to MAX_BUCKETS, default 60); `limit`, `order` and
`max_count` are accepted and mean nothing here. The answer:

    {"total": 1234, "edges": [t0, ..., tN], "levels": {"ERROR": [n, ...], ..., "none": [...]}}

`edges` are the N+1 bucket bounds in unix seconds; each level has N counts.
"""

from __future__ import annotations

import asyncio

import orjson
from aiohttp import web
from multidict import MultiDict

from logcaster.frontends.http.query import REFUSALS, Draining, error_response, parse_query
from logcaster.frontends.http.server import json_error, principal_of
from logcaster.frontends.lineproto import QueryService
from logcaster.frontends.query_metrics import outcome_of
from logcaster.options import HttpConfig
from logcaster.query.histogram import DEFAULT_BUCKETS, MAX_BUCKETS

HISTOGRAM_PATH = "/api/v1/histogram"


class HistogramEndpoints:
    """The histogram route; `Endpoints` for `HttpServer.mount`."""

    def __init__(self, service: QueryService, config: HttpConfig) -> None:
        self._service = service
        self._timeout = config.request_timeout
        self._draining = False

    def routes(self) -> list[web.RouteDef]:
        return [web.get(HISTOGRAM_PATH, self.get)]

    def drain(self) -> None:
        self._draining = True

    async def get(self, request: web.Request) -> web.Response:
        params = MultiDict(request.query)
        text = params.popall("buckets", [str(DEFAULT_BUCKETS)])[-1]
        if not text.isdigit() or not 1 <= int(text) <= MAX_BUCKETS:
            return json_error(400, f"buckets must be 1 to {MAX_BUCKETS}, got {text[:20]!r}")
        loop = asyncio.get_running_loop()
        started = loop.time()
        failure: Exception | None = None
        try:
            if self._draining:
                raise Draining("the server is shutting down")
            query = parse_query(params, self._service)
            async with asyncio.timeout(self._timeout):
                found = await self._service.histogram(query, int(text), principal_of(request))
        except REFUSALS as exc:
            failure = exc
        self._service.observe("http", outcome_of(failure), loop.time() - started)
        if failure is not None:
            return error_response(failure)
        return web.Response(body=orjson.dumps(found.to_dict()), content_type="application/json")
