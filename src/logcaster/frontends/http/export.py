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

import asyncio
import time

import orjson
from aiohttp import web
from multidict import MultiDict, MultiMapping

from logcaster.frontends.answers import SLICE_EVENTS
from logcaster.frontends.http.query import QueryEndpoints
from logcaster.query.planner import Answer
from logcaster.security.neutralize import json_safe

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
    response.enable_chunked_encoding()
    await response.prepare(request)
    rows = answer.rows
    try:
        async with asyncio.timeout_at(deadline):
            for start in range(0, len(rows), SLICE_EVENTS):
                part = rows[start : start + SLICE_EVENTS]
                lines = [orjson.dumps(ev.to_dict(), default=str) for ev in part]
                await response.write(json_safe(b"\n".join(lines) + b"\n"))
                await asyncio.sleep(0)  # other requests run between slices
            await response.write_eof()
    except TimeoutError:
        _cut_off(request)
    except BaseException:
        _cut_off(request)
        raise
    return response


def _cut_off(request: web.Request) -> None:
    """A started download cannot become an error answer: cut it off, so the
    client sees an incomplete body, never a short valid one."""
    if request.transport is not None:
        request.transport.abort()
