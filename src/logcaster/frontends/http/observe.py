"""Metrics and health over HTTP (SPEC §8): `/metrics`, `/api/v1/stats`,
`/healthz`, `/readyz`.

All four read the server as it is at the request: `/metrics` and
`/api/v1/stats` render one fresh `Readings` each (metrics/registry.py; the
same values STATS shows), `/readyz` runs the checks (metrics/health.py).
`/healthz` says only that the process answers HTTP: an orchestrator restarts
a server that fails it, so it must not fail for what a restart cannot fix (a
full queue, a receiver down).
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from logcaster.frontends.http.server import json_response
from logcaster.metrics.health import Health
from logcaster.metrics.prometheus import CONTENT_TYPE, Exposition
from logcaster.metrics.registry import Readings, stats_values


class ObserveEndpoints:
    """`Endpoints` for `HttpServer.mount`: metrics, stats and health."""

    def __init__(self, read: Callable[[], Readings], health: Health) -> None:
        self._read = read
        self._health = health
        self._exposition = Exposition(read)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/metrics", self.metrics),
            web.get("/api/v1/stats", self.stats),
            web.get("/healthz", self.healthz),
            web.get("/readyz", self.readyz),
        ]

    def drain(self) -> None:
        return None  # nothing to end: the draining check reports the drain

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self._exposition.render(), headers={"Content-Type": CONTENT_TYPE})

    async def stats(self, request: web.Request) -> web.Response:
        return json_response(stats_values(self._read()))

    async def healthz(self, request: web.Request) -> web.Response:
        return json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        report = self._health.report()
        return json_response(report.to_dict(), 200 if report.ready else 503)
