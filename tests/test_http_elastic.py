"""Elasticsearch `_bulk` and its probes over real sockets, driven by the official
Python client (`elasticsearch`: `helpers.bulk`, `helpers.streaming_bulk`) and raw
aiohttp requests for the bodies a client would not send."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from elasticsearch import AuthenticationException, Elasticsearch, helpers

from logcaster.testing import ServerProcess, wait_for
from tests.conftest import ServerFactory
from tests.security_helpers import start_auth_server

NDJSON = "application/x-ndjson"


def base(server: ServerProcess) -> str:
    return f"http://127.0.0.1:{server.ports['http']}"


def request(
    method: str, target: str, body: bytes = b"", **headers: str
) -> tuple[int, Any, dict[str, str]]:
    async def go() -> tuple[int, Any, dict[str, str]]:
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, target, data=body, headers=headers) as resp,
        ):
            raw = await resp.read()
            return resp.status, orjson.loads(raw) if raw else None, dict(resp.headers)

    return asyncio.run(go())


def events(server: ServerProcess, params: str = "") -> list[dict[str, Any]]:
    answer = orjson.loads(server.query(f"JSON QUERY limit=1000 order=asc {params}"))
    rows: list[dict[str, Any]] = answer["events"]
    return rows


def total(server: ServerProcess) -> int:
    found: int = orjson.loads(server.query("JSON COUNT"))["count"]
    return found


@pytest.fixture
def es(server: ServerProcess) -> Iterator[Elasticsearch]:
    client = Elasticsearch(base(server))
    yield client
    client.close()


def test_the_python_client_bulk_stores_every_document_once_with_its_fields(
    server: ServerProcess, es: Elasticsearch
) -> None:
    info = es.info()
    assert info["version"]["number"] == "8.17.0"
    assert info["tagline"] == "You Know, for Search"
    docs = [
        {
            "_index": "orders",
            "_source": {
                "@timestamp": "2026-01-02T03:04:05.250Z",
                "message": f"order {i} paid",
                "log": {"level": "warn" if i % 2 else "error"},
                "service": {"name": "billing"},
                "host": {"name": f"web-{i % 3}"},
                "order": {"id": f"o-{i}", "items": [1, 2]},
            },
        }
        for i in range(300)
    ]
    ok, failed = helpers.bulk(es, docs, chunk_size=120)
    assert (ok, failed) == (300, [])
    rows = wait_for("300 events", lambda: events(server), lambda r: len(r) == 300)
    assert sorted(int(ev["message"].split()[1]) for ev in rows) == list(range(300))
    first = next(ev for ev in rows if ev["message"] == "order 7 paid")
    assert (first["level"], first["service"], first["host"]) == ("WARN", "billing", "web-1")
    assert first["ts"] == pytest.approx(1767323045.25)
    assert first["fields"]["order.id"] == "o-7"
    assert first["fields"]["order.items"] == [1, 2]
    assert first["fields"]["index"] == "orders"
    [found] = events(server, "order.id=o-42")
    assert found["message"] == "order 42 paid"
    assert len(events(server, "index=orders level=ERROR")) == 150


def test_the_python_client_streaming_bulk_reports_each_item(
    server: ServerProcess, es: Elasticsearch
) -> None:
    actions = (
        {"_index": "jobs", "_id": f"j{i}", "message": f"job {i}", "n": i} for i in range(250)
    )
    results = list(helpers.streaming_bulk(es, actions, chunk_size=64))
    assert len(results) == 250
    assert all(ok and item["index"]["status"] == 201 for ok, item in results)
    assert [item["index"]["_id"] for _, item in results] == [f"j{i}" for i in range(250)]
    wait_for("250 events", lambda: total(server), lambda n: n == 250)
    [ev] = events(server, "_id=j17")
    assert (ev["message"], ev["fields"]["n"], ev["fields"]["index"]) == ("job 17", 17, "jobs")


def test_the_client_sends_put_with_its_vendor_type_and_gets_it_back(
    server: ServerProcess,
) -> None:
    vendor = "application/vnd.elasticsearch+x-ndjson; compatible-with=9"
    accept = "application/vnd.elasticsearch+json; compatible-with=9"
    body = b'{"create":{}}\n{"message":"one"}\n'
    status, answer, headers = request(
        "PUT", base(server) + "/logs/_bulk", body, **{"Content-Type": vendor, "Accept": accept}
    )
    assert status == 200, answer
    assert headers["Content-Type"] == accept
    assert headers["X-Elastic-Product"] == "Elasticsearch"
    [item] = answer["items"]
    assert item["create"]["status"] == 201 and item["create"]["_index"] == "logs"
    status, answer, headers = request(
        "POST",
        base(server) + "/_bulk",
        b'{"index":{"_index":"x"}}\n{"message":"two"}\n',
        **{"Content-Type": NDJSON},
    )
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert [ev["message"] for ev in events(server)] == ["one", "two"]


def test_malformed_items_get_their_own_errors_and_the_others_are_stored(
    server: ServerProcess,
) -> None:
    body = b"\n".join(
        [
            b'{"index":{"_index":"a"}}',
            b'{"message":"good 1"}',
            b'{"index":{"_index":"a"}}',
            b'{"message": not json}',
            b'{"delete":{"_index":"a","_id":"1"}}',
            b'{"update":{"_index":"a","_id":"1"}}',
            b'{"doc":{"x":1}}',
            b'{"frobnicate":{"_index":"a"}}',
            b'{"message":"ignored with its unknown action"}',
            b'{"create":{}}',
            b'{"message":"no index"}',
            b'{"create":{"_index":"a"}}',
            b'["not", "an", "object"]',
            b'{"create":{"_index":"a"}}',
            b'{"message":"good 2"}',
            b'{"index":{"_index":"a"}}',
        ]
    )
    status, answer, _ = request("POST", base(server) + "/_bulk", body, **{"Content-Type": NDJSON})
    assert status == 200
    assert answer["errors"] is True
    statuses = [next(iter(item.values()))["status"] for item in answer["items"]]
    assert statuses == [201, 400, 400, 400, 400, 400, 400, 201, 400]
    kinds = [next(iter(item)) for item in answer["items"]]
    assert kinds[2:4] == ["delete", "update"] and kinds[4] == "frobnicate"
    bad = answer["items"][1]["index"]["error"]
    assert bad["type"] == "document_parsing_exception" and "line 4" in bad["reason"]
    assert answer["items"][-1]["index"]["error"]["reason"] == "source is missing"
    assert [ev["message"] for ev in events(server)] == ["good 1", "good 2"]


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"", NDJSON, 400),
        (b"\n\n", NDJSON, 400),
        (b"not json at all\n", NDJSON, 400),
        (b'["index"]\n{"message":"x"}\n', NDJSON, 400),
        (b'{"index":{}}\n{"message":"x"}\n', "text/plain", 415),
        (b'{"index":{}}\n{"message":"x"}\n', "multipart/form-data; boundary=x", 415),
    ],
)
def test_a_bad_body_is_refused_whole_in_elasticsearchs_error_format(
    server: ServerProcess, body: bytes, content_type: str, status: int
) -> None:
    got, answer, headers = request(
        "POST", base(server) + "/_bulk", body, **{"Content-Type": content_type}
    )
    assert got == status
    assert answer["status"] == status
    assert set(answer["error"]) == {"type", "reason"}
    assert headers["X-Elastic-Product"] == "Elasticsearch"
    assert total(server) == 0


def test_filter_path_shrinks_the_answer_as_beats_and_logstash_ask(server: ServerProcess) -> None:
    body = b'{"create":{}}\n{"message":"one","level":"warn"}\n' * 3 + b'{"create":{}}\n[1]\n'
    target = base(server) + "/beats/_bulk?filter_path=errors,items.*.error,items.*.status"
    status, answer, _ = request("POST", target, body, **{"Content-Type": NDJSON})
    assert status == 200
    assert answer["errors"] is True and set(answer) == {"errors", "items"}
    assert answer["items"][:3] == [{"create": {"status": 201}}] * 3
    assert answer["items"][3]["create"]["status"] == 400
    wait_for("3 events", lambda: total(server), lambda n: n == 3)
    status, answer, _ = request("GET", base(server) + "/?filter_path=version.number")
    assert answer == {"version": {"number": "8.17.0"}}


def test_probes_answer_as_elasticsearch_does(server_factory: ServerFactory) -> None:
    server = server_factory(env={"LOGCASTER_ELASTIC__VERSION": "9.1.2"})
    status, doc, headers = request("GET", base(server) + "/")
    assert (status, doc["version"]["number"]) == (200, "9.1.2")
    assert headers["X-Elastic-Product"] == "Elasticsearch"
    assert request("HEAD", base(server) + "/")[0] == 200
    status, doc, _ = request("GET", base(server) + "/_license")
    assert (status, doc["license"]["status"]) == (200, "active")
    assert request("GET", base(server) + "/_cluster/health")[1]["status"] == "green"
    for path in ("/_index_template/t", "/_template/t", "/_ilm/policy/p", "/_ingest/pipeline/p"):
        status, doc, headers = request("GET", base(server) + path)
        assert (status, doc["status"]) == (404, 404), path
        assert headers["X-Elastic-Product"] == "Elasticsearch"
        assert request("HEAD", base(server) + path)[0] == 404
        put = request("PUT", base(server) + path, b"{}", **{"Content-Type": "application/json"})
        assert put[:2] == (200, {"acknowledged": True}), path


def test_with_auth_a_bearer_token_sends_and_none_is_refused(tmp_path: Path) -> None:
    auth = start_auth_server(tmp_path)
    try:
        url = auth.http
        with Elasticsearch(url, bearer_auth=auth.tokens["ingest"]) as client:
            assert client.info()["cluster_name"] == "logcaster"
            assert helpers.bulk(client, [{"_index": "s", "message": "secret"}]) == (1, [])
        with Elasticsearch(url) as anonymous, pytest.raises(AuthenticationException):
            helpers.bulk(anonymous, [{"_index": "s", "message": "nope"}])
        assert request("GET", url + "/")[0] == 401
        # An Elasticsearch API key is not a LogCaster token scheme: only Bearer is.
        keyed = Elasticsearch(url, api_key=auth.tokens["ingest"])
        with keyed, pytest.raises(AuthenticationException):
            keyed.info()
        with Elasticsearch(url, bearer_auth=auth.tokens["viewer"]) as viewer:
            refused = list(
                helpers.streaming_bulk(
                    viewer,
                    [{"_index": "s", "message": "x"}],
                    raise_on_error=False,
                    raise_on_exception=False,
                    max_retries=0,
                )
            )
            assert refused and not refused[0][0]
        answer = orjson.loads(auth.query("JSON QUERY limit=10", auth.tokens["viewer"]))
        assert [ev["message"] for ev in answer["events"]] == ["secret"]
    finally:
        auth.server.kill()


def test_a_gzip_body_as_beats_send_it_is_taken(server: ServerProcess) -> None:
    body = b"".join(
        b'{"create":{"_index":"filebeat"}}\n' + orjson.dumps({"message": f"l{i}"}) + b"\n"
        for i in range(50)
    )
    status, answer, _ = request(
        "POST",
        base(server) + "/_bulk",
        gzip.compress(body),
        **{"Content-Type": "application/json; charset=UTF-8", "Content-Encoding": "gzip"},
    )
    assert (status, answer["errors"], len(answer["items"])) == (200, False, 50)
    assert len(events(server, "index=filebeat")) == 50


def test_a_gzip_bomb_is_refused_whole_with_413(server_factory: ServerFactory) -> None:
    server = server_factory(env={"LOGCASTER_HTTP__MAX_BODY_BYTES": "65536"})
    bomb = gzip.compress(b'{"index":{"_index":"b"}}\n{"message":"' + b"x" * 1_000_000 + b'"}\n')
    status, answer, _ = request(
        "POST",
        base(server) + "/_bulk",
        bomb,
        **{"Content-Type": NDJSON, "Content-Encoding": "gzip"},
    )
    assert (status, answer["status"], answer["error"]["type"]) == (
        413,
        413,
        "content_too_long_exception",
    )
    assert total(server) == 0
