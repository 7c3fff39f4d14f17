"""`GET /api/v1/export` over real HTTP: a search's events as NDJSON, every match up
to query.max_limit by default, counted in headers, and only for EXPORT_DATA."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import orjson

from logcaster.testing import ServerProcess
from tests.security_helpers import start_auth_server


def get(
    server: ServerProcess, target: str, token: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"http://127.0.0.1:{server.ports['http']}{target}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_an_export_is_the_search_as_ndjson_with_every_match(server: ServerProcess) -> None:
    lines = [f"[ERROR] 2026-12-05 10:00:{i % 60:02d}.000 pay/v1: failed #{i}" for i in range(150)]
    lines += ["[INFO] 2026-12-05 10:01:00.000 pay/v1: fine"]
    server.send(("\n".join(lines) + "\n").encode())
    server.wait_total(151)
    status, headers, body = get(server, "/api/v1/export?level=ERROR")
    assert status == 200
    assert headers["Content-Type"] == "application/x-ndjson"
    assert headers["Content-Disposition"].startswith('attachment; filename="logcaster-')
    rows = [orjson.loads(line) for line in body.splitlines()]
    assert len(rows) == 150  # past the query's default limit of 100: an export takes all
    assert (headers["X-LogCaster-Found"], headers["X-LogCaster-Returned"]) == ("100", "150")
    assert headers["X-LogCaster-Capped"] == "true"  # found is exact up to max_count (100)
    query = orjson.loads(get(server, "/api/v1/query?level=ERROR&limit=150")[2])
    assert rows == query["events"]
    status, headers, body = get(server, "/api/v1/export?level=ERROR&limit=3&max_count=1000")
    assert len(body.splitlines()) == 3 and headers["X-LogCaster-Found"] == "150"
    status, _, body = get(server, "/api/v1/export?regex=(")
    assert status == 400 and orjson.loads(body)["error"]


def test_an_export_needs_export_data_and_is_audited(tmp_path: Path) -> None:
    auth = start_auth_server(tmp_path)
    try:
        assert get(auth.server, "/api/v1/export")[0] == 401
        assert get(auth.server, "/api/v1/export", auth.tokens["viewer"])[0] == 403
        assert get(auth.server, "/api/v1/query", auth.tokens["viewer"])[0] == 200
        status, _, _ = get(auth.server, "/api/v1/export?service=pay", auth.tokens["operator"])
        assert status == 200
        entries = auth.wait_audit(2)
        exports = [e for e in entries if e.get("action") == "export"]
        assert [e["result"] for e in exports] == ["denied", "allowed"]
        assert "service=pay" in exports[-1]["detail"]
    finally:
        auth.server.kill()
