"""`GET /api/v1/openapi.json`: the OpenAPI 3 document of the HTTP API.

The document is kept as YAML beside this module (`openapi.yaml`: comments, and
diffs a reviewer can read) and served as JSON, converted once at start. It is
kept true by tests/test_http_openapi.py, which fuzzes a running server from it.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import orjson
import yaml
from aiohttp import web

from logcaster import __version__

OPENAPI_PATH = "/api/v1/openapi.json"


def load_document() -> dict[str, Any]:
    """The document, with this package's version as the API's."""
    text = resources.files(__package__).joinpath("openapi.yaml").read_text("utf-8")
    doc: dict[str, Any] = yaml.safe_load(text)
    doc["info"]["version"] = __version__
    return doc


class OpenApiEndpoints:
    """The document's route; `Endpoints` for `HttpServer.mount`."""

    def __init__(self) -> None:
        self._body = orjson.dumps(load_document())

    def routes(self) -> list[web.RouteDef]:
        return [web.get(OPENAPI_PATH, self.get)]

    def drain(self) -> None:
        return None

    async def get(self, request: web.Request) -> web.Response:
        return web.Response(body=self._body, content_type="application/json")
