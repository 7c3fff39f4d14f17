"""Elasticsearch's `_bulk` API and the probes shippers make before it (issue 19).

- `POST`/`PUT /_bulk` and `/{index}/_bulk`: NDJSON action and source pairs
  (elastic_bulk.py), taken through the HTTP intake (`IngestEndpoints.take`:
  rate limits, queue policy, bounded body, `?ack=1`), answered in
  Elasticsearch's shape `{"took", "errors", "items"}`.
- `GET`/`HEAD /`: a version document (`elastic.version`); `GET /_license`;
  `GET /_cluster/health`; the template, ILM policy and ingest pipeline
  routes Beats call at start: a `PUT` is accepted and ignored
  (`{"acknowledged": true}`), a `GET`/`HEAD` says there is none (404), truthfully.

Every answer carries `X-Elastic-Product: Elasticsearch` (the official clients
refuse a server without it) and the content type the client asked for: the
vendor type `application/vnd.elasticsearch+json; compatible-with=N` when its
`Accept` names it, else `application/json`. Errors are in Elasticsearch's
format, `{"error": {"type", "reason"}, "status"}`.
"""

from __future__ import annotations

import re
import time
import uuid

import orjson
from aiohttp import web

from logcaster.frontends.http.elastic_bulk import Bulk, decode_bulk, texts_of
from logcaster.frontends.http.elastic_filter import parse_filter
from logcaster.frontends.http.ingest import IngestEndpoints, asks_ack
from logcaster.frontends.http.payload import Texts
from logcaster.options import ElasticConfig
from logcaster.security.neutralize import json_safe

PRODUCT = {"X-Elastic-Product": "Elasticsearch"}
BULK_PATHS = ("/_bulk", "/{index}/_bulk")
PROBE_PATHS = (
    "/",
    "/_license",
    "/_cluster/health",
    "/_cat/health",
    "/_index_template/{name}",
    "/_template/{name}",
    "/_ilm/policy/{name}",
    "/_ingest/pipeline/{name}",
)
_VENDOR = re.compile(r"application/vnd\.elasticsearch\+json\s*;\s*compatible-with\s*=\s*(\d+)")
_ERROR_TYPES = {
    400: "illegal_argument_exception",
    404: "resource_not_found_exception",
    408: "timeout_exception",
    413: "content_too_long_exception",
    415: "media_type_header_exception",
    429: "es_rejected_execution_exception",
    503: "unavailable_shards_exception",
    504: "timeout_exception",
}


class ElasticEndpoints:
    """`Endpoints` for `HttpServer.mount`: the bulk routes and the probes."""

    def __init__(self, config: ElasticConfig, ingest: IngestEndpoints, max_line: int) -> None:
        self._version = config.version
        self._ingest = ingest
        self._max_line = max_line
        self._uuid = str(uuid.uuid4())

    def routes(self) -> list[web.RouteDef]:
        routes = []
        for path in BULK_PATHS:
            routes += [web.post(path, self.bulk), web.put(path, self.bulk)]
        routes += [
            web.get("/", self.root),
            web.get("/_license", self.license),
            web.get("/_cluster/health", self.health),
            web.get("/_cat/health", self.cat_health),  # rsyslog's HEAD before it sends
        ]
        for path in PROBE_PATHS[4:]:
            routes += [web.get(path, self.none_such), web.put(path, self.acknowledge)]
        return routes

    def drain(self) -> None:
        pass  # the intake (IngestEndpoints) refuses new bodies while draining

    async def bulk(self, request: web.Request) -> web.Response:
        started = time.monotonic()
        kind = request.content_type
        if kind not in ("", "application/octet-stream") and "json" not in kind:
            reason = f"Content-Type [{kind[:100]}] is not supported: send NDJSON"
            return error(request, 415, reason)
        index = request.match_info.get("index")
        decoded: list[Bulk] = []
        max_line = self._max_line

        def decoder(body: bytes) -> Texts:
            decoded.append(decode_bulk(body, index, max_line))
            return texts_of(decoded[0])

        taken = await self._ingest.take(request, decoder, ack=asks_ack(request), protocol="elastic")
        if taken.status != 200 or not decoded:
            headers = {"Retry-After": str(taken.retry_after)} if taken.retry_after else {}
            return error(request, taken.status, taken.error or "refused", headers)
        bulk = decoded[0]
        took = int((time.monotonic() - started) * 1000)
        return answer(request, bulk.answer(took, parse_filter(request.query.get("filter_path"))))

    async def root(self, request: web.Request) -> web.Response:
        major = self._version.split(".")[0]
        doc = {
            "name": "logcaster",
            "cluster_name": "logcaster",
            "cluster_uuid": self._uuid,
            "version": {
                "number": self._version,
                "build_flavor": "default",
                "build_type": "logcaster",
                "build_hash": "logcaster",
                "build_date": "1970-01-01T00:00:00.000Z",
                "build_snapshot": False,
                "lucene_version": "none",
                "minimum_wire_compatibility_version": f"{major}.0.0",
                "minimum_index_compatibility_version": f"{major}.0.0",
            },
            "tagline": "You Know, for Search",
        }
        return answer(request, doc)

    async def license(self, request: web.Request) -> web.Response:
        doc = {
            "license": {
                "status": "active",
                "uid": self._uuid,
                "type": "basic",
                "issue_date": "1970-01-01T00:00:00.000Z",
                "issue_date_in_millis": 0,
                "max_nodes": 1000,
                "issued_to": "logcaster",
                "issuer": "logcaster",
                "start_date_in_millis": -1,
            }
        }
        return answer(request, doc)

    async def health(self, request: web.Request) -> web.Response:
        doc = {
            "cluster_name": "logcaster",
            "status": "green",
            "timed_out": False,
            "number_of_nodes": 1,
            "number_of_data_nodes": 1,
        }
        return answer(request, doc)

    async def cat_health(self, request: web.Request) -> web.Response:
        now = time.time()
        line = f"{int(now)} {time.strftime('%H:%M:%S', time.gmtime(now))} logcaster green 1 1\n"
        return web.Response(text=line, content_type="text/plain", headers=PRODUCT)

    async def none_such(self, request: web.Request) -> web.Response:
        """A template, ILM policy or pipeline: LogCaster keeps none."""
        name = request.match_info.get("name", "")[:256]
        return error(request, 404, f"[{name}] not found: LogCaster keeps no such resource")

    async def acknowledge(self, request: web.Request) -> web.Response:
        """A template, ILM policy or pipeline put: accepted and ignored."""
        return answer(request, {"acknowledged": True})


def answer(
    request: web.Request, doc: object, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """`doc` as an Elasticsearch answer, `filter_path` applied; as bytes, its JSON
    already written with the filter applied (a bulk's: `Bulk.answer`)."""
    if isinstance(doc, bytes):
        data = doc
    else:
        keep = parse_filter(request.query.get("filter_path"))
        data = orjson.dumps(doc if keep is None or not isinstance(doc, dict) else keep.apply(doc))
    return web.Response(
        body=json_safe(data),
        status=status,
        headers={**PRODUCT, **(headers or {}), "Content-Type": _content_type(request)},
    )


def error(
    request: web.Request, status: int, reason: str, headers: dict[str, str] | None = None
) -> web.Response:
    kind = _ERROR_TYPES.get(status, "exception")
    doc = {"error": {"type": kind, "reason": reason}, "status": status}
    return answer(request, doc, status, headers)


def _content_type(request: web.Request) -> str:
    match = _VENDOR.search(request.headers.get("Accept", ""))
    if match is None:
        return "application/json"
    return f"application/vnd.elasticsearch+json; compatible-with={match[1]}"
