"""`POST /v1/logs`: OTLP/HTTP logs (the OpenTelemetry protocol specification).

On the HTTP server, and on the optional dedicated listener (`otlp.port`,
4318 by convention, where an SDK with default settings sends). The body
(`application/x-protobuf` or `application/json`, gzip or not) goes through
the shared intake (`IngestEndpoints.take`: bounds, rate limits, queue
policy, acks) and otlp_decode.py. The reply has the request's content type:

- 200 with an `ExportLogsServiceResponse`, empty, or with `partialSuccess`
  (rejectedLogRecords, errorMessage) when records were rejected (bad trace
  or span id length) or not kept by a drop or sample queue policy;
- errors as a `google.rpc.Status` (code, message): 400 for a body that is
  not a request (not to be retried), 413 for one too big, 415 for another
  content type (answered in JSON), 429, 503 and 504 with `Retry-After`.

401 and 403 come from the server's shared access check, as its JSON errors.
"""

from __future__ import annotations

from aiohttp import web
from google.protobuf import json_format
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

from logcaster.config import Config
from logcaster.frontends.http.ingest import IngestEndpoints, asks_ack
from logcaster.frontends.http.otlp_decode import PROTOBUF_TYPES, Rejected, decode
from logcaster.frontends.http.payload import Texts

PATH = "/v1/logs"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
RETRY_AFTER_S = 1
# google.rpc.Code by HTTP status.
_CODES = {400: 3, 408: 4, 413: 8, 415: 3, 429: 8, 502: 14, 503: 14, 504: 4}
_RETRYABLE = frozenset({429, 502, 503, 504})
_MAX_REASONS = 3


class OtlpEndpoints:
    """The OTLP logs route; `Endpoints` for `HttpServer.mount`."""

    def __init__(self, config: Config, ingest: IngestEndpoints) -> None:
        self._ingest = ingest
        self._max_line = config.ingest.max_line_bytes

    def routes(self) -> list[web.RouteDef]:
        return [web.post(PATH, self.post)]

    def drain(self) -> None:
        self._ingest.drain()

    async def post(self, request: web.Request) -> web.Response:
        content_type = request.content_type
        protobuf = content_type in PROTOBUF_TYPES
        if not protobuf and content_type != JSON:
            message = f"Content-Type {content_type!r}: send {PROTOBUF} or {JSON}"
            return _status(415, message, protobuf=False)
        rejected = Rejected()
        max_line = self._max_line

        def decoder(body: bytes) -> Texts:
            return decode(body, content_type, max_line, rejected)

        taken = await self._ingest.take(request, decoder, ack=asks_ack(request), protocol="otlp")
        if taken.status != 200:
            return _status(taken.status, taken.error or "refused", protobuf=protobuf)
        answer = ExportLogsServiceResponse()
        dropped = taken.total - taken.kept
        if rejected.count or dropped:
            reasons = rejected.reasons[:_MAX_REASONS]
            if dropped:
                reasons.append(f"{dropped} dropped by the server's queue policy")
            answer.partial_success.rejected_log_records = rejected.count + dropped
            answer.partial_success.error_message = "; ".join(reasons)
        return _reply(answer, 200, protobuf)


def _status(status: int, message: str, *, protobuf: bool) -> web.Response:
    """An error as the spec's `google.rpc.Status`, in the request's encoding."""
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status in _RETRYABLE else None
    return _reply(Status(code=_CODES.get(status, 2), message=message), status, protobuf, headers)


def _reply(
    message: ExportLogsServiceResponse | Status,
    status: int,
    protobuf: bool,
    headers: dict[str, str] | None = None,
) -> web.Response:
    if protobuf:
        body = message.SerializeToString()
        return web.Response(body=body, status=status, content_type=PROTOBUF, headers=headers)
    text = json_format.MessageToJson(message, indent=None, ensure_ascii=True)
    return web.Response(text=text, status=status, content_type=JSON, headers=headers)
