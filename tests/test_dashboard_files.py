"""The dashboard's files over real HTTP (frontends/http/dashboard.py): a browser's
`GET /` is the page, anything else stays Elasticsearch's probe; every file is
served under the strict Content-Security-Policy, with an ETag; nothing else is."""

from __future__ import annotations

import urllib.error
import urllib.request

import orjson

from logcaster.frontends.http.dashboard import CSP, load_assets
from logcaster.testing import ServerProcess


def fetch(server: ServerProcess, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    url = f"http://127.0.0.1:{server.ports['http']}{path}"
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_a_browser_gets_the_page_and_a_client_the_elasticsearch_probe(
    server: ServerProcess,
) -> None:
    status, headers, body = fetch(server, "/", Accept="text/html,application/xhtml+xml,*/*")
    assert status == 200 and body.startswith(b"<!doctype html>")
    assert headers["Content-Security-Policy"] == CSP
    assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    status, headers, body = fetch(server, "/", Accept="application/json")
    assert status == 200 and headers["X-Elastic-Product"] == "Elasticsearch"
    assert orjson.loads(body)["version"]["number"]
    assert fetch(server, "/ui/")[2] == fetch(server, "/", Accept="text/html")[2]


def test_every_file_is_served_with_its_type_and_an_etag(server: ServerProcess) -> None:
    assets = load_assets()
    assert {"index.html", "app.js", "app.css", "vendor/uPlot.esm.js"} <= set(assets)
    for name, asset in assets.items():
        status, headers, body = fetch(server, "/ui/" + name)
        assert (status, body) == (200, asset.body), name
        assert headers["Content-Type"] == asset.content_type
        assert headers["Content-Security-Policy"] == CSP
        again = fetch(server, "/ui/" + name, **{"If-None-Match": headers["ETag"]})
        assert again[0] == 304 and again[2] == b""
    page = assets["index.html"].body.decode()
    assert "<script>" not in page and " style=" not in page  # nothing the CSP would refuse


def test_no_other_file_is_served(server: ServerProcess) -> None:
    for path in ("/ui/vendor/README.md", "/ui/vendor/uPlot.LICENSE", "/ui/../dashboard.py"):
        assert fetch(server, path)[0] == 404, path
    assert fetch(server, "/ui/%2e%2e/dashboard.py")[0] == 404
