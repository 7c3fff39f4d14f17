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

The shippers' protocols carry the same events, `batch` records a request:

- otlp: an OTLP `ExportLogsServiceRequest` (protobuf, `POST /v1/logs`), each
  record's body the event text, one resource with `service.name`.
- loki: a Loki push JSON body (`POST /loki/api/v1/push`), one stream with a
  `job` label, each value `[<ns>, <text>]`.
- esbulk: Elasticsearch `_bulk` NDJSON (`POST /_bulk`), `{"create":{}}` and a
  `{"message": <text>}` source per event.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

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
PATHS = {"otlp": "/v1/logs", "loki": "/loki/api/v1/push", "esbulk": "/_bulk"}
KINDS = tuple(CONTENT_TYPES)
BASE_NS = 1_768_809_600_000_000_000  # 2026-01-19T08:00:00Z


@dataclass(frozen=True)
class Bodies:
    """One kind of request bodies over a whole corpus."""

    kind: str
    content_type: str
    bodies: list[bytes]
    events: int  # in all bodies together
    nbytes: int  # of all bodies together
    path: str = "/api/v1/logs"


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
    chunks = [texts[i : i + batch] for i in range(0, len(texts), batch)]
    if kind == "ndjson":
        bodies = [b"\n".join(map(_ndjson_line, c)) + b"\n" for c in chunks]
    elif kind == "text":
        bodies = [b"\n".join(c) + b"\n" for c in chunks]
    elif kind == "otlp":
        bodies = [_otlp(c) for c in chunks]
    elif kind == "loki":
        bodies = [_loki(c) for c in chunks]
    elif kind == "esbulk":
        bodies = [_esbulk(c) for c in chunks]
    else:
        raise ValueError(f"unknown body kind {kind!r}")
    path = PATHS.get(kind, "/api/v1/logs")
    return Bodies(kind, CONTENT_TYPES[kind], bodies, len(texts), sum(map(len, bodies)), path)


def _otlp(texts: list[bytes]) -> bytes:
    request = logs_service_pb2.ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    attribute = resource_logs.resource.attributes.add()
    attribute.key = "service.name"
    attribute.value.string_value = "bench"
    records = resource_logs.scope_logs.add().log_records
    for i, text in enumerate(texts):
        record = records.add()
        record.time_unix_nano = BASE_NS + i
        record.body.string_value = text.decode("utf-8", "replace")
    return bytes(request.SerializeToString())


def _loki(texts: list[bytes]) -> bytes:
    values = [[str(BASE_NS + i), t.decode("utf-8", "replace")] for i, t in enumerate(texts)]
    return orjson.dumps({"streams": [{"stream": {"job": "bench"}, "values": values}]})


def _esbulk(texts: list[bytes]) -> bytes:
    action = b'{"create":{}}\n'
    return b"".join(action + _ndjson_line(t) + b"\n" for t in texts)
