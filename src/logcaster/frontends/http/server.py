"""The HTTP front end's listener (SPEC §2, §6, §8): one aiohttp application.

Endpoints are mounted from outside (`mount`): ingest, queries, live tail,
metrics and health today, and the dashboard and the shippers' protocols
later, each an `Endpoints` object whose routes the server serves. What the
server owns is what every endpoint shares:

- **Bounds.** Header lines and count (aiohttp's parser), bodies (each endpoint
  reads through `body.read_body`, which also bounds the decoded size), the
  time of a request (`http.request_timeout`; streams excepted), the time
  its line and headers take (`http.header_timeout`, `_HeaderDeadline`: a
  slowloris client is cut with 408), the rate of its body
  (`http.min_body_rate`, enforced by `body.read_body`) and the connections
  open at once (past `http.max_connections` a new connection gets one `503`
  and is closed before any request is read).
- **Errors.** Every error is a JSON document `{"error": "..."}` with its
  status, aiohttp's own routing errors (404, 405, 413) too; an unexpected
  exception is logged and answered 500 without taking down the server (the
  API test fuzzes for it). Only a request aiohttp cannot parse (a request line
  or header past its bound, a malformed header) gets aiohttp's plain-text 400,
  before any handler runs.
- **Drain.** `stop` (with the sources, before the queue drains): new
  connections are refused, endpoints stop taking work (ingest answers 503,
  live tails end), idle keep-alive connections close, and in-flight requests
  finish within the deadline, except those waiting for acks: they are
  answered once the drain made their events durable, and `close` ends them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from math import ceil
from typing import Protocol

import orjson
from aiohttp import web

from logcaster.component import Endpoint, listening, server_endpoint
from logcaster.frontends.http.body import BODY_PACE
from logcaster.frontends.http.connections import HeaderDeadline, Refused
from logcaster.log import log_event
from logcaster.metrics.registry import Readings
from logcaster.options import HttpConfig
from logcaster.security.guard import Guard, Peer, open_guard
from logcaster.security.neutralize import json_safe
from logcaster.security.ratelimit import Client
from logcaster.security.roles import ANONYMOUS, Permission, Principal
from logcaster.security.tls import serve
from logcaster.sources.connections import CONNECTIONS, REFUSED, SLOW_CLOSED, ConnectionLimits

logger = logging.getLogger("logcaster.frontends.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Requests on these paths are streams (SSE): no request timeout.
STREAM_KEY = web.AppKey("streams", set[str])
PRINCIPAL = web.RequestKey("principal", Principal)  # set by the middleware


@dataclass(frozen=True, slots=True)
class Access:
    """What a route needs (`HttpServer.mount`): a permission (None: public), the
    audit action's name, whether an allowed request is audited (privileged
    actions; refusals always are) or summarized once a minute per client
    (ingest), and whether it counts against the client's query rate."""

    permission: Permission | None
    action: str = ""
    audited: bool = False
    summarized: bool = False
    query_rate: bool = False


PUBLIC = Access(None)
# A request the drain must not wait for (waiting for acks): the handler sets it.
PARKED = "logcaster.parked"
CLOSE_WAIT_S = 2.0  # close(): how long answered-but-unsent acks may take to go out
LISTENER = "http"
# The stream listeners' families, under the HTTP listener's own STATS names.
HTTP_CONNECTIONS = CONNECTIONS.also("HttpConnections")
HTTP_REFUSED = REFUSED.also("HttpConnectionsRefused")
HTTP_SLOW_CLOSED = SLOW_CLOSED.also("HttpSlowClosed")


class Endpoints(Protocol):
    """A set of routes mounted on the HTTP server."""

    def routes(self) -> list[web.RouteDef]: ...

    def drain(self) -> None:
        """The server is stopping: take no new work, end streams, wake waiters."""


def json_response(
    doc: object, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        # Terminal- and bidi-safe (security/neutralize.py): errors echo what the
        # client sent, the audit view what other clients did.
        body=json_safe(orjson.dumps(doc, default=str)),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def json_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return json_response({"error": message}, status, headers)


def peer_of(request: web.Request) -> Peer:
    transport = request.transport
    return Peer.of(transport.get_extra_info("peername") if transport is not None else None)


def principal_of(request: web.Request) -> Principal:
    """Who the request acts as (ANONYMOUS with authentication off)."""
    principal: Principal = request.get(PRINCIPAL, ANONYMOUS)
    return principal


def client_of(request: web.Request) -> Client:
    """The rate limits' key: the source address and the token's name."""
    return (peer_of(request).address, principal_of(request).name)


def _asks_decrypt(request: web.Request) -> bool:
    return any(
        key.lower() == "decrypt" and value.lower() in ("1", "true", "yes")
        for key, value in request.query.items()
    )


def _browser_get(request: web.Request) -> bool:
    return request.method == "GET" and "text/html" in request.headers.get("Accept", "")


def _bearer(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class HttpServer:
    """The HTTP listener: a `Component` (component.py) serving mounted `Endpoints`."""

    option = "http.port"

    def __init__(
        self,
        config: HttpConfig,
        guard: Guard | None = None,
        tls: ssl.SSLContext | None = None,
        *,
        name: str = LISTENER,
    ) -> None:
        """`guard`: authentication, roles, audit, limits (security/guard.py); `tls`:
        serve HTTPS with this context (security/tls.py); `name`: the listener's
        config section and metrics label (`otlp` for OTLP's own listener)."""
        self.config = config
        self.ssl = tls
        self.name = name
        self.option = f"{name}.port"
        self.guard = guard or open_guard(name)
        self._access: dict[str, Access] = {}  # route path -> what it needs
        self.port = config.port
        self.hosts: list[str] = []
        self.draining = False
        self.refused = 0  # connections closed at once over http.max_connections
        # Per-address slots (the total is aiohttp's count, checked in `_protocol`).
        self.limits = ConnectionLimits(name, config.max_connections, config.max_connections_per_ip)
        self.slow_closed = 0  # headers past http.header_timeout, bodies under min_body_rate
        # Each open connection's header deadline, by aiohttp's protocol (request.protocol).
        self.guards: dict[object, HeaderDeadline] = {}
        self._endpoints: list[Endpoints] = []
        self._app = web.Application(
            middlewares=[self._middleware], client_max_size=config.max_body_bytes
        )
        self._app[STREAM_KEY] = set()
        self._app[BODY_PACE] = (config.min_body_rate, config.header_timeout)
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None
        # The dashboard (dashboard.py): what a browser's `GET /` gets, public.
        self.page: Handler | None = None
        self._active = 0  # requests in flight, parked ones aside
        self._idle = asyncio.Event()
        self._idle.set()

    def mount(
        self,
        endpoints: Endpoints,
        access: Access,
        *,
        streams: tuple[str, ...] = (),
        paths: dict[str, Access] | None = None,
    ) -> None:
        """Serve `endpoints`' routes, each needing `access` unless `paths` says
        otherwise for its path; `streams` are paths answered as streams (no timeout)."""
        self._endpoints.append(endpoints)
        routes = endpoints.routes()
        self._app.add_routes(routes)
        for route in routes:
            path = getattr(route, "path", "")
            self._access[path] = (paths or {}).get(path, access)
        self._app[STREAM_KEY].update(streams)

    async def start(self) -> None:
        config = self.config
        self._runner = web.AppRunner(
            self._app,
            access_log=None,
            handle_signals=False,
            keepalive_timeout=config.keepalive_timeout,
            max_line_size=config.max_header_bytes,
            max_field_size=config.max_header_bytes,
            max_headers=config.max_headers,
            auto_decompress=False,  # body.read_body decodes, within the size bound
            shutdown_timeout=CLOSE_WAIT_S,
        )
        await self._runner.setup()
        with listening(self.option, config.host, self.port):
            self._server = await serve(self._protocol, config.host, self.port, self.ssl)
        bound = server_endpoint(self._server)
        self.port, self.hosts = bound.port, bound.hosts

    def admit(self, ip: str) -> bool:
        """Take a slot for a connection from `ip` (http.max_connections_per_ip; the
        total is checked before, against aiohttp's own count)."""
        return self.limits.admit(ip, 0)

    def release(self, ip: str) -> None:
        self.limits.release(ip)

    def _protocol(self) -> asyncio.BaseProtocol:
        assert self._runner is not None and self._runner.server is not None
        server = self._runner.server
        if len(server.connections) >= self.config.max_connections:
            self.refused += 1
            return Refused()
        return HeaderDeadline(server(), self)

    @property
    def endpoint(self) -> Endpoint | None:
        return Endpoint(self.port, self.hosts) if self._server is not None else None

    def readings(self, out: Readings) -> None:
        runner = self._runner
        open_now = len(runner.server.connections) if runner and runner.server else 0
        name = self.name
        out.add(HTTP_CONNECTIONS, open_now, name)
        out.add(HTTP_REFUSED, self.refused, name, "max_connections")
        per_ip = self.limits.refused.get("max_connections_per_ip", 0)
        out.add(HTTP_REFUSED, per_ip, name, "max_connections_per_ip")
        out.add(HTTP_SLOW_CLOSED, self.slow_closed, name)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self._active += 1
        self._idle.clear()
        guard = self.guards.get(request.protocol)
        if guard is not None:
            guard.started()
        try:
            if self.page is not None and request.path == "/" and _browser_get(request):
                # A browser asks for the dashboard; any other `GET /` is routed
                # (Elasticsearch's version probe, which needs its token).
                return await self.page(request)
            refused = await self._check(request)
            if refused is not None:
                return refused
            if request.path in request.app[STREAM_KEY]:
                return await handler(request)
            async with asyncio.timeout(self.config.request_timeout):
                response = await handler(request)
            if response.status == 408:  # a body under http.min_body_rate
                self.slow_closed += 1
                response.force_close()  # the rest of the body is not waited for
            return response
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            # aiohttp's own errors (404, 405, 413, ...) as JSON like ours.
            return json_error(exc.status, exc.reason, _kept_headers(exc))
        except TimeoutError:
            return json_error(503, "request timed out", {"Retry-After": "1"})
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception:
            logger.exception("http_request_failed", extra={"fields": {"path": request.path}})
            return json_error(500, "internal error (see the server log)")
        finally:
            if guard is not None:
                guard.finished()
            if not request.get(PARKED):
                self._finished()

    async def _check(self, request: web.Request) -> web.Response | None:
        """Authenticate, authorize, audit and rate-limit a request per its route's
        `Access`; the refusal, or None to go on. Unknown paths go on (to a 404)."""
        resource = request.match_info.route.resource
        access = self._access.get(resource.canonical if resource is not None else "", PUBLIC)
        if access.permission is None:
            return None
        guard = self.guard
        peer = peer_of(request)
        principal = await guard.authenticate(_bearer(request), peer, record=False)
        if principal is None:
            return json_error(401, "unauthorized", {"WWW-Authenticate": "Bearer"})
        request[PRINCIPAL] = principal
        # The rate first: a refused request did not run, and is not audited as if.
        if access.query_rate:
            wait = guard.limits.query((peer.address, principal.name), LISTENER)
            if wait > 0:
                return json_error(429, "rate limited", {"Retry-After": str(max(1, ceil(wait)))})
        permission = access.permission
        if access.action == "query" and _asks_decrypt(request):
            permission = Permission.DECRYPT  # recorded as a query, refused for non-admins
        detail = request.path_qs if access.audited else None
        if not guard.allow(
            principal, permission, access.action, peer, detail, record=access.audited
        ):
            return json_error(403, "forbidden")
        if access.summarized:
            guard.summarize(principal, access.action, peer)
        return None

    def still_valid(self, request: web.Request) -> bool:
        """Whether a long request (a live tail) may go on: its token neither revoked
        nor expired since it was checked; a refusal is audited."""
        principal = principal_of(request)
        if self.guard.still_valid(principal):
            return True
        self.guard.cut(principal, peer_of(request))
        return False

    def _finished(self) -> None:
        self._active -= 1
        if self._active <= 0:
            self._idle.set()

    def park(self, request: web.Request) -> Callable[[], None]:
        """Mark a request as waiting for acks: the drain does not wait for it.
        Returns the call that unparks it (the handler calls it when done waiting)."""
        request[PARKED] = True
        self._finished()

        def unpark() -> None:
            request[PARKED] = False
            self._active += 1
            self._idle.clear()

        return unpark

    async def stop(self, deadline: float | None = None) -> None:
        """Refuse new connections and work, end streams, let requests finish (module doc)."""
        self.draining = True
        for endpoints in self._endpoints:
            endpoints.drain()
        if self._server is not None:
            self._server.close()
        runner = self._runner
        if runner is not None and runner.server is not None:
            runner.server.pre_shutdown()  # idle keep-alive connections close now
        wait = 5.0 if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            await asyncio.wait_for(self._idle.wait(), wait)
        except TimeoutError:
            log_event(logger, logging.WARNING, "http_drain_timeout", in_flight=self._active)

    async def close(self) -> None:
        """After the final acks: answer the parked requests, then close every connection."""
        runner = self._runner
        if runner is None:
            return
        if runner.server is not None:
            with contextlib.suppress(Exception):
                await runner.server.shutdown(CLOSE_WAIT_S)
        await runner.cleanup()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), CLOSE_WAIT_S)
        self._runner = None


def _kept_headers(exc: web.HTTPException) -> dict[str, str] | None:
    allow = exc.headers.get("Allow")
    return {"Allow": allow} if allow else None
