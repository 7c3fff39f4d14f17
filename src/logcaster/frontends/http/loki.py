"""Loki's push API on the HTTP server (issue 19; docs/shippers.md).

- `POST /loki/api/v1/push`: a JSON or snappy protobuf `PushRequest`
  (loki_decode.py), taken through the same intake as `POST /api/v1/logs`
  (IngestEndpoints.take: rate limits, queue policy, bounded bodies, acks).
  204 with no body once taken, as Loki answers; a refusal is a plain-text
  message, as Loki's are, with Retry-After on 429 and 503.
- `GET /ready`: 200 `ready` while the server takes pushes, 503 once it drains
  (the health check of Vector, Grafana Agent and Alloy). Public.

`?ack=1` or `X-LogCaster-Ack: 1` answers only once the events are durable, as
on the native route.
"""

from __future__ import annotations

from aiohttp import web

from logcaster.config import Config
from logcaster.frontends.http.ingest import IngestEndpoints, asks_ack
from logcaster.frontends.http.loki_decode import decode
from logcaster.frontends.http.payload import Texts

PUSH_PATH = "/loki/api/v1/push"
READY_PATH = "/ready"


class LokiEndpoints:
    """The Loki push routes; `Endpoints` for `HttpServer.mount`."""

    def __init__(self, config: Config, ingest: IngestEndpoints) -> None:
        self._ingest = ingest
        self._max_line = config.ingest.max_line_bytes
        self._max_body = config.http.max_body_bytes
        self._draining = False

    def routes(self) -> list[web.RouteDef]:
        return [web.post(PUSH_PATH, self.push), web.get(READY_PATH, self.ready)]

    def drain(self) -> None:
        self._draining = True

    async def ready(self, request: web.Request) -> web.Response:
        if self._draining:
            return web.Response(status=503, text="not ready: the server is shutting down\n")
        return web.Response(text="ready\n")

    async def push(self, request: web.Request) -> web.Response:
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        max_line, max_body = self._max_line, self._max_body

        def decoder(body: bytes) -> Texts:
            return decode(body, content_type, max_line, max_body)

        taken = await self._ingest.take(request, decoder, ack=asks_ack(request), protocol="loki")
        if taken.status == 200:
            return web.Response(status=204)
        headers = {"Retry-After": str(taken.retry_after)} if taken.retry_after else None
        return web.Response(
            status=taken.status, text=f"{taken.error or 'refused'}\n", headers=headers
        )
