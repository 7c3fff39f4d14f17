"""`GET /api/v1/histogram` over real HTTP: every match counted by time bucket and
level, the same from memory and from the store, and bad parameters refused."""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from logcaster.testing import ServerProcess, start_server, wait_for

T0 = 1_764_928_800.0  # 2025-12-05 10:00:00 UTC
LEVELS = ("INFO", "WARN", "ERROR")


def get(server: ServerProcess, path: str, params: list[tuple[str, str]]) -> tuple[int, Any]:
    url = f"http://127.0.0.1:{server.ports['http']}{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, orjson.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


def events() -> bytes:
    """600 events, one every 6 s over an hour; levels cycle INFO, WARN, ERROR."""
    lines = []
    for i in range(600):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(T0 + i * 6))
        lines.append(f"[{LEVELS[i % 3]}] {stamp.replace('T', ' ')}.000 api/v1: request {i}")
    return ("\n".join(lines) + "\n").encode()


def delivered(server: ServerProcess, n: int, source: str = "all") -> None:
    """Wait until queries see `n` events (Total counts them received, before delivery)."""
    params = [("max_count", "100000"), ("limit", "1"), ("source", source)]
    wait_for(f"{n} delivered", lambda: get(server, "/api/v1/query", params)[1]["found"], n.__eq__)


def span(buckets: str, **extra: str) -> list[tuple[str, str]]:
    window = [("time_from", str(T0)), ("time_to", str(T0 + 3600)), ("buckets", buckets)]
    return window + list(extra.items())


def test_every_match_is_counted_by_bucket_and_level_from_memory_and_the_store(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    server = start_server("-P", str(data))
    try:
        server.send(events())
        delivered(server, 600)
        status, doc = get(server, "/api/v1/histogram", span("6"))
        assert status == 200 and doc["total"] == 600
        assert doc["edges"] == [T0 + 600 * k for k in range(7)]
        # Ten minutes hold 100 events: 34, 33, 33 of the three levels, in turn.
        assert doc["levels"]["INFO"] == [34, 33, 33, 34, 33, 33]
        assert doc["levels"]["ERROR"] == [33, 33, 34, 33, 33, 34]
        assert [sum(c) for c in zip(*doc["levels"].values(), strict=True)] == [100] * 6
        status, errors = get(server, "/api/v1/histogram", span("6", level="ERROR"))
        assert errors["total"] == 200 and sum(errors["levels"]["ERROR"]) == 200
        assert sum(errors["levels"]["INFO"]) == 0
        found = get(server, "/api/v1/query", [("level", "ERROR"), ("max_count", "10000")])[1]
        assert found["found"] == 200
        status, words = get(server, "/api/v1/histogram", span("60", keyword="request 59"))
        assert words["total"] == 11  # request 59, 590..599
        memory = doc
    finally:
        server.kill()
    # After a restart the same events come from the store: the same counts.
    server = start_server("-P", str(data))
    try:
        delivered(server, 600, "store")  # indexed again after the restart
        status, doc = get(server, "/api/v1/histogram", span("6", source="store"))
        assert status == 200 and doc == memory
    finally:
        server.kill()


def test_without_a_range_the_buckets_run_from_the_first_match_to_now(
    server: ServerProcess,
) -> None:
    server.send(events())
    delivered(server, 600)
    status, doc = get(server, "/api/v1/histogram", [("buckets", "10"), ("level", "WARN")])
    assert status == 200 and doc["total"] == 200
    assert doc["edges"][0] == T0 + 6 and doc["edges"][-1] >= time.time() - 60


def test_bad_parameters_are_400(server: ServerProcess) -> None:
    for params in ([("buckets", "0")], [("buckets", "1001")], [("buckets", "x")], [("regex", "(")]):
        status, doc = get(server, "/api/v1/histogram", params)
        assert status == 400 and doc["error"], params
