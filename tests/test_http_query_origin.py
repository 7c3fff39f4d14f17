"""`origin=`: a query for the events of one source (the event's own `source`,
which `source=` cannot name: that one picks memory or the store)."""

from __future__ import annotations

import urllib.parse
import urllib.request
from typing import Any

import orjson

from logcaster.testing import ServerProcess, wait_for


def rows(server: ServerProcess, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{server.ports['http']}/api/v1/query?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as reply:
        events: list[dict[str, Any]] = orjson.loads(reply.read())["events"]
        return events


def test_origin_selects_the_events_of_one_source(server: ServerProcess) -> None:
    server.send(b"[INFO] 2026-12-05 10:00:00.000 a/v1: from the first\n")
    server.send(b"[INFO] 2026-12-05 10:00:01.000 b/v1: from the second\n")
    first, second = wait_for(
        "2 events", lambda: rows(server, [("order", "asc")]), lambda r: len(r) == 2
    )
    assert first["source"] != second["source"]
    picked = rows(server, [("origin", first["source"])])
    assert [ev["id"] for ev in picked] == [first["id"]]
    reply = orjson.loads(server.query(f"JSON QUERY origin={second['source']}"))
    assert [ev["id"] for ev in reply["events"]] == [second["id"]]
