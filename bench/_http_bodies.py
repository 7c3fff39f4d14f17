"""The HTTP benchmark's request bodies, made from a bench corpus before any clock runs.

The corpus is cut into events exactly as a TCP connection's framer cuts it
(LogCaster's own `LineFramer` with the default multi-line rules, fed 256 KiB
at a time like a connection's reads), so every body holds whole events and the
server's event count is the corpus' on either transport. The same events then
make two kinds of bodies, `batch` events each:

- ndjson (`application/x-ndjson`): one JSON object per line. The corpus' own
  JSON lines (about 10% of the default corpus) go as they are; every other
  event becomes `{"message": <its text>}`, a multi-line event's newlines
  escaped inside the string. This is what a shipper sends, and what costs the
  server a JSON validation of every line instead of TCP's framer.
- text (`text/plain`): the event texts as they are, framed and grouped by the
  server exactly as on TCP: the same bytes as the TCP run, so its cost over
  TCP is HTTP's own (request parsing, the body read, one batch per request).
- loki (`application/json` to `/loki/api/v1/push`): a Loki push body, one
  stream with a `job` label, each value `[<ns>, <text>]`.
- esbulk (`application/x-ndjson` to `/bench/_bulk`, the index in the path):
  Elasticsearch bulk pairs, a
  `{"create":{}}` action and a `{"message": <text>}` source per event.
- otlp (`application/x-protobuf` to `/v1/logs`): an OTLP
  `ExportLogsServiceRequest` per body, one resource (service.name) and scope,
  each event a LogRecord with its text as the body and a time: what an
  OpenTelemetry SDK or Collector sends, decoded with the generated classes
  and rewritten as one JSON line per record by the server.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, SeverityNumber

from logcaster.options import IngestConfig, MultilineConfig
from logcaster.pipeline.framing import LineFramer

READ_BYTES = 256 * 1024  # what uvloop hands a TCP connection per read
CONTENT_TYPES = {
    "ndjson": "application/x-ndjson",
    "text": "text/plain; charset=utf-8",
    "otlp": "application/x-protobuf",
    "loki": "application/json",
    "esbulk": "application/x-ndjson",
}
PATHS = {
    "otlp": "/v1/logs",
    "loki": "/loki/api/v1/push",
    "esbulk": "/bench/_bulk",
}  # else /api/v1/logs
PROTOCOL_BODIES: dict[str, Callable[[list[bytes]], bytes]] = {}  # filled below
KINDS = tuple(CONTENT_TYPES)


@dataclass(frozen=True)
class Bodies:
    """One kind of request bodies over a whole corpus."""

    kind: str
    content_type: str
    bodies: list[bytes]
    events: int  # in all bodies together
    nbytes: int  # of all bodies together
    path: str = "/api/v1/logs"
    counts: tuple[int, ...] = ()  # events in each body (the protocols' answers do not say)


def frame_events(data: bytes) -> list[bytes]:
    """The corpus' event texts, as a TCP connection's framer would cut them."""
    framer = LineFramer(IngestConfig().max_line_bytes, MultilineConfig())
    texts: list[bytes] = []
    view = memoryview(data)
    for off in range(0, len(data), READ_BYTES):
        texts.extend(framer.feed(bytes(view[off : off + READ_BYTES])))
    texts.extend(framer.close())
    return texts


def _ndjson_line(text: bytes) -> bytes:
    if text[:1] == b"{":
        try:
            if isinstance(orjson.loads(text), dict):
                return text  # one of the corpus' JSON lines: as it is
        except orjson.JSONDecodeError:
            pass
    return orjson.dumps({"message": text.decode("utf-8", "replace")})


def make_bodies(texts: list[bytes], kind: str, batch: int) -> Bodies:
    """`texts` in bodies of `batch` events each (the last may hold fewer)."""
    if kind in PROTOCOL_BODIES:
        chunks = [texts[i : i + batch] for i in range(0, len(texts), batch)]
        bodies = [PROTOCOL_BODIES[kind](chunk) for chunk in chunks]
        counts = tuple(map(len, chunks))
        nbytes = sum(map(len, bodies))
        return Bodies(kind, CONTENT_TYPES[kind], bodies, len(texts), nbytes, PATHS[kind], counts)
    if kind == "ndjson":
        lines = [_ndjson_line(t) for t in texts]
    elif kind == "text":
        lines = texts
    else:
        raise ValueError(f"unknown body kind {kind!r}")
    bodies = [b"\n".join(lines[i : i + batch]) + b"\n" for i in range(0, len(lines), batch)]
    return Bodies(kind, CONTENT_TYPES[kind], bodies, len(texts), sum(map(len, bodies)))


def _otlp_body(texts: list[bytes]) -> bytes:
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    service = AnyValue(string_value="bench")
    resource_logs.resource.attributes.append(KeyValue(key="service.name", value=service))
    scope_logs = resource_logs.scope_logs.add()
    scope_logs.scope.name = "bench"
    now = time.time_ns()
    scope_logs.log_records.extend(
        LogRecord(
            time_unix_nano=now,
            severity_number=SeverityNumber.SEVERITY_NUMBER_INFO,
            body=AnyValue(string_value=t.decode("utf-8", "replace")),
        )
        for t in texts
    )
    body: bytes = request.SerializeToString()
    return body


def _loki_body(texts: list[bytes]) -> bytes:
    """A Loki push JSON body: one stream (a `job` label), `[<ns>, <line>]` values."""
    now = time.time_ns()
    values = [[str(now + i), t.decode("utf-8", "replace")] for i, t in enumerate(texts)]
    return orjson.dumps({"streams": [{"stream": {"job": "bench"}, "values": values}]})


def _esbulk_body(texts: list[bytes]) -> bytes:
    """Elasticsearch `_bulk` NDJSON: a `create` action and a source per event."""
    action = b'{"create":{}}\n'
    return b"".join(action + _ndjson_line(t) + b"\n" for t in texts)


PROTOCOL_BODIES.update(otlp=_otlp_body, loki=_loki_body, esbulk=_esbulk_body)
