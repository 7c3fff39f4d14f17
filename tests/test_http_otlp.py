"""OTLP/HTTP logs (`POST /v1/logs`) over real sockets: the OpenTelemetry Python
SDK's OTLPLogExporter through its LoggingHandler (main HTTP port and the
dedicated `otlp` listener, with and without auth), and hand-made bodies per
the OTLP spec: protobuf, OTLP/JSON (hex ids, string int64), gzip, errors."""

from __future__ import annotations

import asyncio
import gzip
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from logcaster.config import load_config
from logcaster.exceptions import ConfigError
from logcaster.testing import ServerProcess, start_server
from tests.security_helpers import start_auth_server

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
TRACE_HEX = "5b8efff798038103d269b633813fc60c"
SPAN_HEX = "eee19b7ec3c1b174"
# LoggingHandler is the SDK's own handler the issue names; the SDK now points to
# opentelemetry-instrumentation-logging's, which is not a dependency here.
SDK_HANDLER = pytest.mark.filterwarnings("ignore:.*LoggingHandler.*:DeprecationWarning")


@pytest.fixture(scope="module")
def otlp_server() -> Iterator[ServerProcess]:
    env = {**os.environ, "LOGCASTER_OTLP__ENABLED": "true", "LOGCASTER_OTLP__PORT": "0"}
    server = start_server(env=env)
    try:
        yield server
    finally:
        server.kill()


def endpoint(server: ServerProcess, listener: str = "http") -> str:
    return f"http://127.0.0.1:{server.ports[listener]}/v1/logs"


def post(
    target: str, body: bytes, content_type: str, **headers: str
) -> tuple[int, bytes, dict[str, str]]:
    async def go() -> tuple[int, bytes, dict[str, str]]:
        sent = {"Content-Type": content_type, **headers}
        async with (
            aiohttp.ClientSession() as session,
            session.post(target, data=body, headers=sent) as resp,
        ):
            return resp.status, await resp.read(), dict(resp.headers)

    return asyncio.run(go())


def events(server: ServerProcess, params: str) -> list[dict[str, Any]]:
    answer = orjson.loads(server.query(f"JSON QUERY limit=1000 order=asc {params}"))
    rows: list[dict[str, Any]] = answer["events"]
    return rows


def wait_events(server: ServerProcess, params: str, n: int) -> list[dict[str, Any]]:
    for _ in range(500):
        rows = events(server, params)
        if len(rows) >= n:
            return rows
        asyncio.run(asyncio.sleep(0.02))
    raise AssertionError(f"{params}: {len(rows)} events of {n}")


def sdk_send(target: str, service: str, headers: dict[str, str] | None = None) -> str:
    """Three records through the SDK inside one span; the span's trace id (hex)."""
    tracer = TracerProvider().get_tracer("otlp-test")
    provider = LoggerProvider(
        resource=Resource.create({"service.name": service, "service.version": "1.2.3"})
    )
    exporter = OTLPLogExporter(endpoint=target, headers=headers, timeout=10)
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    handler = LoggingHandler(level=logging.DEBUG, logger_provider=provider)
    logger = logging.getLogger(f"otlp.{service}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        with tracer.start_as_current_span("checkout") as span:
            trace_id = format(span.get_span_context().trace_id, "032x")
            logger.debug("cart loaded", extra={"cart.items": 3})
            logger.warning("card slow", extra={"user_id": "u-7"})
            logger.error("card declined", extra={"http.status_code": 402})
        assert provider.force_flush(10_000)
    finally:
        logger.removeHandler(handler)
        provider.shutdown()
    return trace_id


def check_sdk_records(server: ServerProcess, trace_id: str, service: str) -> None:
    rows = wait_events(server, f"trace_id={trace_id}", 3)
    assert [ev["level"] for ev in rows] == ["DEBUG", "WARN", "ERROR"]
    assert [ev["message"] for ev in rows] == ["cart loaded", "card slow", "card declined"]
    assert {ev["service"] for ev in rows} == {service}
    assert {ev["version"] for ev in rows} == {"1.2.3"}
    assert rows[0]["fields"]["cart.items"] == 3
    assert rows[1]["fields"]["user_id"] == "u-7"
    assert rows[2]["fields"]["http.status_code"] == 402
    assert all(len(ev["fields"]["span_id"]) == 16 for ev in rows)
    assert events(server, f"user_id=u-7 service={service}")[0]["fields"]["trace_id"] == trace_id
    assert events(server, f"service={service} level=ERROR")[0]["message"] == "card declined"


@SDK_HANDLER
def test_the_sdk_exporter_sends_to_the_http_port(otlp_server: ServerProcess) -> None:
    trace_id = sdk_send(endpoint(otlp_server), "checkout-main")
    check_sdk_records(otlp_server, trace_id, "checkout-main")


@SDK_HANDLER
def test_the_sdk_exporter_sends_to_the_otlp_listener(otlp_server: ServerProcess) -> None:
    assert otlp_server.ports["otlp"] != otlp_server.ports["http"]
    trace_id = sdk_send(endpoint(otlp_server, "otlp"), "checkout-otlp")
    check_sdk_records(otlp_server, trace_id, "checkout-otlp")
    # Only /v1/logs is served there.
    status, _, _ = post(
        endpoint(otlp_server, "otlp").replace("/v1/logs", "/api/v1/logs"), b"", JSON
    )
    assert status == 404


def attr(key: str, value: AnyValue) -> KeyValue:
    return KeyValue(key=key, value=value)


def sample_request() -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.extend(
        [
            attr("service.name", AnyValue(string_value="pb-svc")),
            attr("host.name", AnyValue(string_value="node-1")),
            attr("k8s.pod.name", AnyValue(string_value="pb-svc-7d4")),
            attr("region", AnyValue(string_value="eu")),
        ]
    )
    scope_logs = resource_logs.scope_logs.add()
    scope_logs.scope.name = "pb.scope"
    structured = AnyValue()
    structured.kvlist_value.values.add(key="order", value=AnyValue(int_value=42))
    scope_logs.log_records.extend(
        [
            LogRecord(
                time_unix_nano=1_700_000_000_500_000_000,
                severity_number=SeverityNumber.SEVERITY_NUMBER_ERROR,
                severity_text="Error",
                body=AnyValue(string_value="pb one"),
                attributes=[attr("region", AnyValue(string_value="us"))],
                trace_id=bytes.fromhex(TRACE_HEX),
                span_id=bytes.fromhex(SPAN_HEX),
            ),
            LogRecord(
                observed_time_unix_nano=1_700_000_001_000_000_000,
                severity_text="warning",
                body=structured,
            ),
        ]
    )
    return request


def test_a_protobuf_body_maps_every_attribute(otlp_server: ServerProcess) -> None:
    body = sample_request().SerializeToString()
    status, raw, headers = post(
        endpoint(otlp_server), gzip.compress(body), PROTOBUF, **{"Content-Encoding": "gzip"}
    )
    assert status == 200 and headers["Content-Type"].startswith(PROTOBUF)
    answer = ExportLogsServiceResponse.FromString(raw)
    assert not answer.HasField("partial_success")
    one, two = wait_events(otlp_server, "service=pb-svc", 2)
    assert (one["level"], one["message"], one["host"], one["pod"]) == (
        "ERROR",
        "pb one",
        "node-1",
        "pb-svc-7d4",
    )
    assert one["ts"] == pytest.approx(1_700_000_000.5)
    assert one["fields"]["region"] == "us"  # the record's attribute wins
    assert (one["fields"]["trace_id"], one["fields"]["span_id"]) == (TRACE_HEX, SPAN_HEX)
    assert one["fields"]["scope"] == "pb.scope"
    assert two["level"] == "WARN" and two["ts"] == pytest.approx(1_700_000_001.0)
    assert two["fields"]["body"] == {"order": 42} and two["fields"]["region"] == "eu"
    assert orjson.loads(two["message"]) == {"order": 42}


def otlp_json(records: list[dict[str, Any]]) -> bytes:
    doc = {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "js-svc"}}]
                },
                "scopeLogs": [{"scope": {"name": "js"}, "logRecords": records}],
                "schemaUrl": "ignored-unknown-too",
            }
        ],
        "someFutureField": 1,
    }
    return orjson.dumps(doc)


def test_an_otlp_json_body_with_hex_ids_and_string_int64(otlp_server: ServerProcess) -> None:
    record = {
        "timeUnixNano": "1700000000000000000",
        "severityNumber": 9,
        "body": {"stringValue": "json one"},
        "attributes": [{"key": "count", "value": {"intValue": "12345678901"}}],
        "traceId": TRACE_HEX.upper(),
        "spanId": SPAN_HEX,
        "unknownField": True,
    }
    status, raw, headers = post(endpoint(otlp_server), otlp_json([record]), JSON)
    assert status == 200, raw
    assert headers["Content-Type"].startswith(JSON) and orjson.loads(raw) == {}
    [ev] = wait_events(otlp_server, "service=js-svc", 1)
    assert (ev["level"], ev["message"], ev["ts"]) == ("INFO", "json one", 1_700_000_000.0)
    assert ev["fields"]["count"] == 12345678901
    assert ev["fields"]["trace_id"] == TRACE_HEX and ev["fields"]["span_id"] == SPAN_HEX


def test_bad_ids_are_a_partial_success(otlp_server: ServerProcess) -> None:
    good = {"body": {"stringValue": "kept partial"}, "traceId": TRACE_HEX}
    short = {"body": {"stringValue": "bad id"}, "traceId": "abcd"}
    not_hex = {"body": {"stringValue": "bad hex"}, "spanId": "zz" * 8}
    status, raw, _ = post(endpoint(otlp_server), otlp_json([good, short, not_hex]), JSON)
    assert status == 200
    partial = orjson.loads(raw)["partialSuccess"]
    assert partial["rejectedLogRecords"] == "2"  # int64 as a string, per OTLP/JSON
    assert "traceId" in partial["errorMessage"] and "spanId" in partial["errorMessage"]
    assert [ev["message"] for ev in wait_events(otlp_server, "service=js-svc", 1)].count(
        "kept partial"
    ) == 1


def status_of(raw: bytes, protobuf: bool) -> Status:
    if protobuf:
        return Status.FromString(raw)
    doc = orjson.loads(raw)
    return Status(code=doc.get("code", 0), message=doc["message"])


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (PROTOBUF, sample_request().SerializeToString()[:-7]),
        (PROTOBUF, b"\xff\xff\xff\xff"),
        (JSON, b'{"resourceLogs": [{"scopeLogs": "no"}]}'),
        (JSON, b"[1, 2]"),
        (JSON, b"{not json"),
    ],
)
def test_a_bad_body_is_a_400_status(
    otlp_server: ServerProcess, content_type: str, body: bytes
) -> None:
    status, raw, headers = post(endpoint(otlp_server), body, content_type)
    assert status == 400 and "Retry-After" not in headers
    assert headers["Content-Type"].startswith(content_type)
    error = status_of(raw, content_type == PROTOBUF)
    assert error.code == 3 and error.message


def test_a_huge_attribute_set_is_stored_cut_to_the_line_bound(otlp_server: ServerProcess) -> None:
    request = sample_request()
    record = request.resource_logs[0].scope_logs[0].log_records[0]
    record.body.string_value = "many attributes"
    record.attributes.extend(attr(f"a{i}", AnyValue(int_value=i)) for i in range(50_000))
    status, raw, _ = post(endpoint(otlp_server), request.SerializeToString(), PROTOBUF)
    assert status == 200, raw
    [row] = wait_events(otlp_server, "keyword=attributes", 1)
    assert (row["message"], row["service"], row["level"]) == ("many attributes", "pb-svc", "ERROR")
    assert row["fields"]["dropped_attributes_count"] == 50_000 + 1  # and the sample's own
    assert row["fields"]["trace_id"] == TRACE_HEX
    record.attributes.clear()
    record.body.string_value = "long message " + '"' * 100_000
    status, raw, _ = post(endpoint(otlp_server), request.SerializeToString(), PROTOBUF)
    assert status == 200, raw
    [row] = wait_events(otlp_server, "keyword=long", 1)
    assert row["message"].startswith('long message ""') and row["message"].endswith("...")
    assert len(row["body"].encode()) <= 65536 and row["service"] == "pb-svc"


def test_another_content_type_is_a_415_status(otlp_server: ServerProcess) -> None:
    status, raw, _ = post(endpoint(otlp_server), b"hello", "text/plain")
    assert status == 415
    assert "application/x-protobuf" in status_of(raw, False).message


def test_a_body_too_big_is_a_413_status(tmp_path: Path) -> None:
    env = {**os.environ, "LOGCASTER_HTTP__MAX_BODY_BYTES": "2048"}
    server = start_server(env=env)
    try:
        request = sample_request()
        request.resource_logs[0].scope_logs[0].log_records[0].body.string_value = "x" * 5000
        status, raw, _ = post(endpoint(server), request.SerializeToString(), PROTOBUF)
        assert status == 413 and Status.FromString(raw).message
        gz = gzip.compress(request.SerializeToString())
        status, _, _ = post(endpoint(server), gz, PROTOBUF, **{"Content-Encoding": "gzip"})
        assert status == 413
    finally:
        server.kill()


@SDK_HANDLER
def test_with_auth_an_ingest_token_is_needed(tmp_path: Path) -> None:
    env = {"LOGCASTER_OTLP__ENABLED": "true", "LOGCASTER_OTLP__PORT": "0"}
    auth = start_auth_server(tmp_path / "data", env=env)
    server = auth.server
    try:
        body = sample_request().SerializeToString()
        for listener in ("http", "otlp"):
            status, _, headers = post(endpoint(server, listener), body, PROTOBUF)
            assert status == 401 and headers["WWW-Authenticate"] == "Bearer"
        bearer = {"Authorization": f"Bearer {auth.tokens['ingest']}"}
        trace_id = sdk_send(endpoint(server, "otlp"), "authed", bearer)
        admin = auth.tokens["admin"]
        answer = auth.query(f"JSON QUERY limit=10 trace_id={trace_id}", admin)
        rows = orjson.loads(answer.splitlines()[-1])["events"] if answer else []
        for _ in range(200):
            if len(rows) == 3:
                break
            asyncio.run(asyncio.sleep(0.05))
            answer = auth.query(f"JSON QUERY limit=10 trace_id={trace_id}", admin)
            rows = orjson.loads(answer.splitlines()[-1])["events"]
        assert {ev["service"] for ev in rows} == {"authed"} and len(rows) == 3
    finally:
        server.kill()


def test_the_otlp_listener_is_a_tls_listener_with_its_own_port() -> None:
    on = load_config(environ={}, overrides={"otlp.enabled": True})
    assert "otlp" in on.tls_listeners() and on.otlp.port == 4318
    assert "otlp" not in load_config(environ={}).tls_listeners()
    with pytest.raises(ConfigError) as err:
        load_config(environ={}, overrides={"otlp.enabled": True, "otlp.port": 8080})
    assert err.value.key == "otlp.port"
