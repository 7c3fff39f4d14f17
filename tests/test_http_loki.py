"""Loki push (`POST /loki/api/v1/push`, `GET /ready`) over real sockets.

Clients: `python-logging-loki` (the JSON push, a real client library), and a
snappy protobuf `PushRequest` built byte for byte as Promtail sends it (no
Content-Encoding, `Content-Type: application/x-protobuf`).
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import os
from pathlib import Path
from typing import Any

import aiohttp
import cramjam
import logging_loki
import orjson
import pytest

from logcaster.frontends.http.loki_decode import MAX_LABELS, parse_labels
from logcaster.frontends.http.loki_push_pb2 import PushRequest
from logcaster.testing import ServerProcess, wait_for
from tests.conftest import ServerFactory
from tests.security_helpers import start_auth_server

PUSH = "/loki/api/v1/push"
PROTOBUF = "application/x-protobuf"


def url(server: ServerProcess, path: str = PUSH) -> str:
    return f"http://127.0.0.1:{server.ports['http']}{path}"


def send(
    target: str, body: bytes | None, method: str = "POST", **headers: str
) -> tuple[int, bytes, dict[str, str]]:
    """One request; (status, body, headers)."""

    async def go() -> tuple[int, bytes, dict[str, str]]:
        async with (
            aiohttp.ClientSession(auto_decompress=False) as session,
            session.request(method, target, data=body, headers=headers) as resp,
        ):
            return resp.status, await resp.read(), dict(resp.headers)

    return asyncio.run(go())


def events(server: ServerProcess, params: str = "") -> list[dict[str, Any]]:
    answer = orjson.loads(server.query(f"JSON QUERY limit=1000 order=asc {params}"))
    rows: list[dict[str, Any]] = answer["events"]
    return rows


def wait_events(server: ServerProcess, n: int, params: str = "") -> list[dict[str, Any]]:
    return wait_for(f"{n} events", lambda: events(server, params), lambda rows: len(rows) >= n)


def promtail_body(request: PushRequest) -> bytes:
    """What Promtail puts on the wire: the serialized request as one snappy block."""
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


def test_python_logging_loki_records_arrive_with_level_service_and_labels(
    server: ServerProcess,
) -> None:
    handler = logging_loki.LokiHandler(
        url=url(server), tags={"app": "billing", "env": "prod"}, version="1"
    )
    logger = logging.getLogger("test_loki_client")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        logger.error("card declined for order=o-7")
        logger.warning("slow answer", extra={"tags": {"route": "/pay"}})
        logger.info("all good")
    finally:
        logger.removeHandler(handler)
        handler.close()
    rows = wait_events(server, 3)
    assert [ev["message"] for ev in rows] == [
        "card declined for order=o-7",
        "slow answer",
        "all good",
    ]
    assert [ev["level"] for ev in rows] == ["ERROR", "WARN", "INFO"]
    assert {ev["service"] for ev in rows} == {"billing"}
    assert rows[0]["fields"]["env"] == "prod"
    assert rows[0]["fields"]["logger"] == "test_loki_client"
    assert rows[0]["fields"]["app"] == "billing"
    assert rows[1]["fields"]["route"] == "/pay"
    assert [ev["id"] for ev in events(server, "route=/pay")] == [rows[1]["id"]]


def test_a_promtail_protobuf_request_arrives_with_labels_and_metadata(
    server: ServerProcess,
) -> None:
    request = PushRequest()
    api = request.streams.add(labels='{job="varlog", level="warn", path="C:\\\\logs\\"x\\""}')
    api.hash = 12345
    first = api.entries.add(line="disk almost full")
    first.timestamp.seconds, first.timestamp.nanos = 1_700_000_000, 123_456_789
    second = api.entries.add(line="retrying upload")
    second.timestamp.seconds = 1_700_000_001
    second.structuredMetadata.add(name="trace_id", value="abc123")
    second.structuredMetadata.add(name="level", value="error")  # metadata wins
    other = request.streams.add(labels='{service_name="api", detected_level="debug"}')
    third = other.entries.add(line="hello ünïcode")
    third.timestamp.seconds = 1_700_000_002
    status, body, _ = send(url(server), promtail_body(request), **{"Content-Type": PROTOBUF})
    assert (status, body) == (204, b"")
    rows = wait_events(server, 3)
    assert [ev["message"] for ev in rows] == [
        "disk almost full",
        "retrying upload",
        "hello ünïcode",
    ]
    assert [ev["level"] for ev in rows] == ["WARN", "ERROR", "DEBUG"]
    assert [ev["service"] for ev in rows] == ["varlog", "varlog", "api"]
    assert rows[0]["fields"]["path"] == 'C:\\logs"x"'
    assert rows[0]["fields"]["job"] == "varlog"
    assert rows[1]["fields"]["trace_id"] == "abc123"
    assert rows[2]["fields"]["detected_level"] == "debug"
    assert "trace_id" not in rows[0]["fields"]
    assert rows[0]["ts"] == pytest.approx(1_700_000_000.123456789, abs=1e-6)
    assert rows[2]["ts"] == 1_700_000_002
    assert [ev["id"] for ev in events(server, "trace_id=abc123")] == [rows[1]["id"]]


def test_json_push_gzipped_with_structured_metadata(server: ServerProcess) -> None:
    doc = {
        "streams": [
            {
                "stream": {"service": "shop", "severity": "error", "region": "eu"},
                "values": [
                    ["1700000000000000000", "first"],
                    ["1700000000500000000", "second", {"user": "u-1"}],
                ],
            }
        ]
    }
    body = gzip.compress(orjson.dumps(doc))
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    assert send(url(server), body, **headers)[0] == 204
    rows = wait_events(server, 2)
    assert [(ev["message"], ev["level"], ev["service"]) for ev in rows] == [
        ("first", "ERROR", "shop"),
        ("second", "ERROR", "shop"),
    ]
    assert rows[1]["fields"] == {"severity": "error", "region": "eu", "user": "u-1"}


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"not snappy at all", PROTOBUF, 400),
        (None, PROTOBUF, 400),  # a valid block, truncated: set below
        (bytes(cramjam.snappy.compress_raw(b"\x0a\xff\xff\xff")), PROTOBUF, 400),
        (b'{"streams": [{"stream": {"a": "b"}, "values": [["x", "line"]]}]}', "", 400),
        (b'{"streams": [{"stream": {"a": "b"}, "values": [["12", 5]]}]}', "application/json", 400),
        (b'{"streams": {}}', "application/json", 400),
        (b"{not json", "application/json", 400),
        (b"hello", "text/plain", 415),
    ],
)
def test_bad_bodies_are_400_in_plain_text_never_500(
    server: ServerProcess, body: bytes | None, content_type: str, status: int
) -> None:
    if body is None:
        request = PushRequest()
        request.streams.add(labels='{a="b"}').entries.add(line="x" * 300)
        body = promtail_body(request)[:-20]
    got, answer, headers = send(url(server), body, **{"Content-Type": content_type})
    assert got == status, answer
    assert headers["Content-Type"].startswith("text/plain")
    assert answer.strip()


def test_a_huge_label_set_is_refused(server: ServerProcess) -> None:
    labels = {f"l{i}": "v" for i in range(MAX_LABELS + 1)}
    doc = {"streams": [{"stream": labels, "values": [["1", "x"]]}]}
    status, answer, _ = send(url(server), orjson.dumps(doc), **{"Content-Type": "application/json"})
    assert status == 400 and b"labels" in answer
    request = PushRequest()
    request.streams.add(labels='{a="' + "v" * 100_000 + '"}').entries.add(line="x")
    status, answer, _ = send(url(server), promtail_body(request), **{"Content-Type": PROTOBUF})
    assert status == 400 and b"label set" in answer
    assert events(server) == []


def test_a_snappy_bomb_is_413(server_factory: ServerFactory) -> None:
    server = server_factory(env={**os.environ, "LOGCASTER_HTTP__MAX_BODY_BYTES": "100000"})
    block = bytes(cramjam.snappy.compress_raw(b"\0" * 1_500_000))
    assert len(block) < 100_000
    assert send(url(server), block, **{"Content-Type": PROTOBUF})[0] == 413


def test_ready_is_public_and_push_takes_a_bearer_ingest_token(tmp_path: Path) -> None:
    auth = start_auth_server(tmp_path / "data")
    try:
        base = auth.http
        status, body, _ = send(f"{base}/ready", None, "GET")
        assert (status, body) == (200, b"ready\n")
        doc = orjson.dumps({"streams": [{"stream": {"app": "a"}, "values": [["1", "x"]]}]})
        json_type = {"Content-Type": "application/json"}
        assert send(base + PUSH, doc, **json_type)[0] == 401
        bearer = {"Authorization": f"Bearer {auth.tokens['ingest']}"}
        assert send(base + PUSH, doc, **json_type, **bearer)[0] == 204
        viewer = {"Authorization": f"Bearer {auth.tokens['viewer']}"}
        assert send(base + PUSH, doc, **json_type, **viewer)[0] == 403
    finally:
        auth.server.kill()


def test_the_label_selector_parser() -> None:
    assert parse_labels("{}") == {}
    assert parse_labels(" { a=\"1\" ,b='2', c=`3\\n`} ") == {"a": "1", "b": "2", "c": "3\\n"}
    assert parse_labels('{a="\\u00e9\\x41\\101\\t"}') == {"a": "éAA\t"}
    assert parse_labels('{"service.name"="x"}') == {"service.name": "x"}
    for bad in ('{a="1"', 'a="1"', "{a=1}", '{a="1"} x', '{a=~"1"}'):
        with pytest.raises(Exception, match="label"):
            parse_labels(bad)
