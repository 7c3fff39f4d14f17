"""Admin endpoints: the audit view (`GET /api/v1/audit`) and `POST /api/v1/reload`.

The audit view needs READ_AUDIT (admin), reload RELOAD (operator and admin);
both are audited (security/guard.py), reload once with its result.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from logcaster.frontends.http.server import (
    LISTENER,
    HttpServer,
    json_error,
    json_response,
    peer_of,
    principal_of,
)
from logcaster.security import audit

AUDIT_PATH = "/api/v1/audit"
RELOAD_PATH = "/api/v1/reload"
AUDIT_DEFAULT = 100


class AdminEndpoints:
    def __init__(
        self, server: HttpServer, audit_dir: Path | None, reload: Callable[[], str | None]
    ) -> None:
        self._server = server
        self._audit_dir = audit_dir
        self._reload = reload

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(AUDIT_PATH, self.audit, allow_head=False),
            web.post(RELOAD_PATH, self.reload),
        ]

    def drain(self) -> None:
        return None

    async def audit(self, request: web.Request) -> web.Response:
        """The newest entries first: ?limit=N (1..10000, default 100), action=, who=."""
        query = request.query
        unknown = sorted(set(query) - {"limit", "action", "who"})
        if unknown:
            return json_error(400, f"unknown parameter {unknown[0]!r} (limit, action, who)")
        try:
            limit = int(query.get("limit", AUDIT_DEFAULT))
        except ValueError:
            return json_error(400, "limit must be a whole number")
        if not 1 <= limit <= audit.MAX_VIEW:
            return json_error(400, f"limit must be 1 to {audit.MAX_VIEW}")
        if self._audit_dir is None:
            return json_error(409, "the audit log is off (set audit.dir or persist.dir)")
        entries = await asyncio.to_thread(
            audit.read_view, self._audit_dir, limit, query.get("action"), query.get("who")
        )
        return json_response({"entries": entries})

    async def reload(self, request: web.Request) -> web.Response:
        failure = self._reload()
        result = "ok" if failure is None else "failed"
        guard = self._server.guard
        guard.security.record(
            principal_of(request), "reload", result, peer_of(request), LISTENER, failure
        )
        if failure is not None:
            return json_error(409, f"reload failed: {failure}")
        return json_response({"reloaded": True})
