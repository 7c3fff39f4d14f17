"""`GET /api/v1/export` (SPEC §8, §9): a search's events as an NDJSON download.

The same parameters, rules and query path as `/api/v1/query` (query.py), with
two differences: `limit` defaults to `query.max_limit` (a download takes all it
may, not a page), and the answer is NDJSON, one event per line in the shape of
a query row, sent as an attachment. It needs EXPORT_DATA (operator and admin;
a viewer may search but not take the data away) and every export is audited
with its parameters.

How many matched is said in headers, since NDJSON has no head:
`X-LogCaster-Found` (exact up to `max_count`), `X-LogCaster-Capped`, and
`X-LogCaster-Returned`. Rows are written a slice at a time, each write waiting
for the client, within `http.request_timeout` (query.py's `send_answer` rules).
"""

from __future__ import annotations

import time

from aiohttp import web
from multidict import MultiDict, MultiMapping

from logcaster.frontends.answers import ndjson_chunks
from logcaster.frontends.http.query import QueryEndpoints, stream_chunks
from logcaster.query.planner import Answer

EXPORT_PATH = "/api/v1/export"


class ExportEndpoints(QueryEndpoints):
    """The export route: the query route's path to an answer, another default
    limit and another answer (`Endpoints` for `HttpServer.mount`, with
    `streams=(EXPORT_PATH,)`: it bounds its own time, as the query route does)."""

    path = EXPORT_PATH

    def params(self, request: web.Request) -> MultiMapping[str]:
        params = MultiDict(request.query)
        if "limit" not in {key.lower() for key in params}:
            params["limit"] = str(self._service.config.max_limit)
        return params

    async def send(
        self, request: web.Request, answer: Answer, deadline: float
    ) -> web.StreamResponse:
        return await _send(request, answer, deadline)


async def _send(request: web.Request, answer: Answer, deadline: float) -> web.StreamResponse:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/x-ndjson",
            "Content-Disposition": f'attachment; filename="logcaster-{stamp}.ndjson"',
            "X-LogCaster-Found": str(answer.total),
            "X-LogCaster-Capped": "true" if answer.capped else "false",
            "X-LogCaster-Returned": str(len(answer.rows)),
        }
    )
    return await stream_chunks(request, response, ndjson_chunks(answer), deadline)
