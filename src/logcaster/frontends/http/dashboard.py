"""The web dashboard's files (SPEC §8; docs/dashboard.md).

The dashboard is static: an HTML page, its ES modules and styles (the `ui`
folder beside this module) and one vendored charting library (`ui/vendor`).
Everything it shows it fetches from the API the page's user is allowed to
read (`/api/v1/query`, `/api/v1/tail`, `/api/v1/stats`), with the token the
user typed, kept in the tab's session storage and sent as a Bearer header.
So the files themselves are public: they hold no data.

- `GET /` with `Accept: text/html` (a browser) is the page (`HttpServer.page`);
  any other `GET /` stays Elasticsearch's version probe (elastic.py).
- `GET /ui/` is the page too; `GET /ui/<file>` its files, read once at start
  into memory (about 200 KB) and served with an ETag.

Every answer carries a strict Content-Security-Policy: scripts, styles and
connections only from this origin, no inline script or style element, no
frames, no plugins. Event text is rendered with `textContent` only (ui/text.js),
so even a page bug could not run a script an event carries.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable

from aiohttp import web

UI_PREFIX = "/ui/"
CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
MAX_FILES = 64  # the folder is ours; a bound anyway on what is held in memory


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


def load_assets() -> dict[str, Asset]:
    """Every servable file under ui/, by its path below it (`vendor/uPlot.esm.js`)."""
    root = resources.files(__package__).joinpath("ui")
    assets: dict[str, Asset] = {}
    stack: list[tuple[str, Traversable]] = [("", root)]
    while stack:
        prefix, folder = stack.pop()
        for entry in folder.iterdir():
            name = prefix + entry.name
            if entry.is_dir():
                stack.append((name + "/", entry))
                continue
            kind = TYPES.get("." + entry.name.rpartition(".")[2])
            if kind is None:
                continue  # READMEs and licences stay in the package, unserved
            body = entry.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            assets[name] = Asset(body, kind, etag)
            if len(assets) > MAX_FILES:
                raise RuntimeError(f"more than {MAX_FILES} dashboard files under {root}")
    if "index.html" not in assets:
        raise RuntimeError(f"the dashboard's index.html is missing under {root}")
    return assets


class DashboardEndpoints:
    """`Endpoints` for `HttpServer.mount` (public: the files hold no data), and
    `page`, the handler `HttpServer.page` serves for a browser's `GET /`."""

    def __init__(self) -> None:
        self._assets = load_assets()

    def routes(self) -> list[web.RouteDef]:
        return [web.get(UI_PREFIX, self.page), web.get(UI_PREFIX + "{name:.+}", self.asset)]

    def drain(self) -> None:
        return None

    async def page(self, request: web.Request) -> web.Response:
        return self._answer(request, self._assets["index.html"])

    async def asset(self, request: web.Request) -> web.Response:
        found = self._assets.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound(reason="no such dashboard file")
        return self._answer(request, found)

    def _answer(self, request: web.Request, asset: Asset) -> web.Response:
        headers = {**SECURITY_HEADERS, "ETag": asset.etag, "Cache-Control": "no-cache"}
        if request.headers.get("If-None-Match") == asset.etag:
            return web.Response(status=304, headers=headers)
        headers["Content-Type"] = asset.content_type
        return web.Response(body=asset.body, headers=headers)
