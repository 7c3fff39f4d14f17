"""OTLP/HTTP logs bodies into event texts (the OpenTelemetry protocol's
`ExportLogsServiceRequest`, decoded by the `opentelemetry-proto` classes).

One decode per request: `ParseFromString` for `application/x-protobuf`; for
`application/json`, one orjson parse, the trace and span ids turned from
OTLP/JSON's hex into the base64 protobuf's canonical JSON reads, then one
`json_format.ParseDict` (unknown fields ignored; enums as integers and
64-bit integers as strings are what it reads anyway).

Each log record becomes ONE JSON object line that the parser maps
(parsing/parse.py): `ts` (unix seconds, from timeUnixNano, else
observedTimeUnixNano), `level` (severityNumber's range, else severityText),
`service`, `version`, `host`, `pod` (the resource's service.name,
service.version, host.name, k8s.pod.name), `message` (the body; a structured
body is also kept whole as `body`), `trace_id` and `span_id` (lowercase hex),
`scope` (the instrumentation scope's name), `event_name`, and every resource,
scope and record attribute under its own dotted key (the record's win).

A record is rejected (counted in the reply's partialSuccess) when its traceId
is not 16 bytes or its spanId not 8 (OTLP/JSON: 32 and 16 hex digits); empty
and all-zero ids mean none. A line over `ingest.max_line_bytes` stays JSON:
its attributes are dropped (`dropped_attributes_count`), then its message is
cut and marked `...` (`_shrunk`).
"""

from __future__ import annotations

import base64
import binascii
import itertools
from dataclasses import dataclass, field
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from logcaster.frontends.http.body import BodyError
from logcaster.frontends.http.payload import Texts

PROTOBUF_TYPES = frozenset({"application/x-protobuf", "application/protobuf"})
JSON_TYPE = "application/json"
ELLIPSIS = b"..."
# severityNumber 1-4 TRACE, 5-8 DEBUG, 9-12 INFO, 13-16 WARN, 17-20 ERROR, 21-24 FATAL.
_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
# Resource attributes that are the event's own attributes rather than fields.
_RESOURCE_KEYS = {
    "service.name": "service",
    "service.version": "version",
    "host.name": "host",
    "k8s.pod.name": "pod",
}
_TRACE_LEN, _SPAN_LEN = 16, 8
# The keys a record's line sets itself: no attribute overrides them.
_RECORD_KEYS = frozenset(("ts", "level", "message", "body", "trace_id", "span_id", "event_name"))
_HAS_EVENT_NAME = "event_name" in LogRecord.DESCRIPTOR.fields_by_name
_BAD_ID = base64.b64encode(b"\x01").decode()  # a hex id that is not hex: rejected by length


@dataclass
class Rejected:
    """Records of one request refused one by one (the reply's partialSuccess)."""

    count: int = 0
    reasons: list[str] = field(default_factory=list)

    def add(self, reason: str) -> None:
        self.count += 1
        if reason not in self.reasons:
            self.reasons.append(reason)


def decode(body: bytes, content_type: str, max_line: int, rejected: Rejected) -> Texts:
    """The event texts of an OTLP logs body; BodyError(400) for a body that is not one."""
    if content_type in PROTOBUF_TYPES:
        request = ExportLogsServiceRequest()
        try:
            request.ParseFromString(body)
        except (DecodeError, RecursionError, ValueError) as exc:
            raise BodyError(400, f"not an OTLP ExportLogsServiceRequest: {exc}") from None
    else:
        request = _from_json(body)
    return _texts(request, max_line, rejected)


def _from_json(body: bytes) -> ExportLogsServiceRequest:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BodyError(400, f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BodyError(400, "an OTLP/JSON body is one object with resourceLogs")
    for resource in _items(doc, "resourceLogs", "resource_logs"):
        for scope in _items(resource, "scopeLogs", "scope_logs"):
            for record in _items(scope, "logRecords", "log_records"):
                if isinstance(record, dict):
                    _hex_ids(record)
    request = ExportLogsServiceRequest()
    try:
        json_format.ParseDict(doc, request, ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError, TypeError, ValueError) as exc:
        raise BodyError(400, f"not an OTLP/JSON ExportLogsServiceRequest: {exc}") from None
    return request


def _items(doc: object, camel: str, snake: str) -> list[Any]:
    if not isinstance(doc, dict):
        return []
    items = doc.get(camel, doc.get(snake))
    return items if isinstance(items, list) else []


def _hex_ids(record: dict[str, Any]) -> None:
    """OTLP/JSON's hex ids as the base64 that protobuf's JSON reader takes."""
    for key in ("traceId", "spanId", "trace_id", "span_id"):
        value = record.get(key)
        if isinstance(value, str):
            try:
                record[key] = base64.b64encode(bytes.fromhex(value)).decode()
            except ValueError:
                record[key] = _BAD_ID


def _texts(request: ExportLogsServiceRequest, max_line: int, rejected: Rejected) -> Texts:
    """Every record's line. What a scope's records share (resource and scope
    attributes, service, host...) is serialized once and spliced after each
    record's own object, unless the record's attributes name one of its keys."""
    texts: list[bytes] = []
    truncated = 0
    dumps = orjson.dumps
    for resource_logs in request.resource_logs:
        base: dict[str, Any] = {}
        own: dict[str, Any] = {}
        for kv in resource_logs.resource.attributes:
            name = _RESOURCE_KEYS.get(kv.key)
            value = _value(kv.value)
            if name is not None and isinstance(value, str):
                own[name] = value
            else:
                base[kv.key] = value
        for scope_logs in resource_logs.scope_logs:
            scope = scope_logs.scope
            common = {**base, **_attributes(scope.attributes)}
            if scope.name:
                common["scope"] = scope.name
            common.update(own)
            for key in _RECORD_KEYS.intersection(common):
                del common[key]  # the record's own keys win
            shared = b"," + dumps(common, default=str)[1:] if common else b"}"
            for record in scope_logs.log_records:
                line = _line(record, rejected)
                if line is None:
                    continue
                own_keys = len(line)
                attributes = record.attributes
                if attributes:
                    for kv in attributes:
                        if kv.key not in line:
                            line[kv.key] = _value(kv.value)
                # Without attributes, a line's keys are _RECORD_KEYS, none in `common`.
                if attributes and not common.keys().isdisjoint(line):
                    # A record attribute named like a shared key: merged, the record's wins.
                    merged = {**common, **line}
                    merged.update(own)
                    text = dumps(merged, default=str)
                else:
                    text = dumps(line)[:-1] + shared  # plain JSON values only (_value)
                if len(text) > max_line:
                    text = _shrunk(line, own_keys, len(attributes), shared, max_line)
                    truncated += 1
                texts.append(text)
    return Texts(texts, truncated)


def _shrunk(
    line: dict[str, Any], own_keys: int, attributes: int, shared: bytes, bound: int
) -> bytes:
    """A record's line cut to the line bound and still JSON, so level, service and
    ids stay queryable: its attributes dropped (counted in
    `dropped_attributes_count`, as OTLP itself counts them), then its message
    cut and marked `...`. Only when the scope's shared keys alone pass the bound
    is the text cut as bytes, like any other over-long line."""
    core = dict(itertools.islice(line.items(), own_keys))
    core.pop("body", None)  # a structured body is in the message too
    if attributes:
        core["dropped_attributes_count"] = attributes
    text = orjson.dumps(core)[:-1] + shared
    message = core.get("message")
    for _ in range(4):  # JSON escapes can make a cut message longer than its bytes
        if len(text) <= bound or not isinstance(message, str) or not message:
            break
        raw = message.encode()
        written = len(orjson.dumps(message))  # its length escaped, as in `text`
        room = written - (len(text) - bound) - len(ELLIPSIS)
        keep = max(0, len(raw) * room // written)  # escapes spread evenly, or one more round
        message = raw[:keep].decode("utf-8", "ignore")
        core["message"] = message + "..."
        text = orjson.dumps(core)[:-1] + shared
    if len(text) > bound:
        text = text[: bound - len(ELLIPSIS)] + ELLIPSIS
    return text


def _line(record: Any, rejected: Rejected) -> dict[str, Any] | None:
    """A record's own keys (_RECORD_KEYS, module docstring) as a JSON object;
    None if it is rejected. Its attributes are added after them by `_texts`."""
    trace_id: bytes = record.trace_id
    span_id: bytes = record.span_id
    line: dict[str, Any] = {}
    if trace_id or span_id:
        if len(trace_id) not in (0, _TRACE_LEN):
            rejected.add("traceId must be 16 bytes (32 hex digits)")
            return None
        if len(span_id) not in (0, _SPAN_LEN):
            rejected.add("spanId must be 8 bytes (16 hex digits)")
            return None
        if trace_id.strip(b"\x00"):
            line["trace_id"] = trace_id.hex()
        if span_id.strip(b"\x00"):
            line["span_id"] = span_id.hex()
    nanos = record.time_unix_nano or record.observed_time_unix_nano
    if nanos:
        line["ts"] = nanos / 1e9
    number = record.severity_number
    if 1 <= number <= 24:
        line["level"] = _LEVELS[(number - 1) // 4]
    elif record.severity_text:
        line["level"] = record.severity_text
    body = record.body
    text = body.string_value  # the usual body: read first, the oneof asked only if empty
    kind = "string_value" if text else body.WhichOneof("value")
    if kind == "string_value":
        line["message"] = text
    elif kind == "kvlist_value" or kind == "array_value":
        value = _value(body)
        line["body"] = value
        line["message"] = orjson.dumps(value, default=str).decode()
    elif kind is None:
        line["message"] = ""
    else:
        line["message"] = orjson.dumps(_value(body)).decode()
    if _HAS_EVENT_NAME:
        event_name = record.event_name
        if event_name:
            line["event_name"] = event_name
    return line


def _attributes(kvs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in kvs:
        out[kv.key] = _value(kv.value)
    return out


def _value(value: AnyValue) -> Any:
    """An AnyValue as plain JSON data (bytes as base64, as OTLP/JSON writes them)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "double_value":
        return value.double_value
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _kv_dict(value.kvlist_value.values)
    if kind == "bytes_value":
        return binascii.b2a_base64(value.bytes_value, newline=False).decode()
    return None


def _kv_dict(kvs: list[KeyValue]) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in kvs}
