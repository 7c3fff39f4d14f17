"""How an event is written: seed-002 text, one JSON object, or an RFC 5424 message.

Text (what LogCaster's parser reads as the simulator header, SPEC §3):

    [INFO] 2026-01-19 15:30:01.234 order-service/v1.8.4 pod/order-service-5f6g7h-jkl678: msg k=v
    [ERROR] 2026-01-19 15:30:01.234 payment-api/v2.3.1 pod/payment-api-7d8f9c-abc123:␠
    <message, Details, Recovery Action, Java trace, Thread, Request ID lines>
    ERROR: auth-service/v3.1.0 pod/auth-service-9p4q5r-ghi345␠
    <message, Details, Recovery Action, Python traceback, Request ID line>

JSON puts the ids and key=value pairs in their own keys and the trace in
`stack_trace` (LogCaster's JSON parser keeps unknown keys as fields).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import orjson

from logcaster.simulate.generator import ERROR, INFO, WARN, SimEvent

_MS3 = tuple(f"{i:03d}" for i in range(1000))
# RFC 5424 PRI = facility * 8 + severity; facility local0 (16).
_SEVERITY = {ERROR: 3, WARN: 4, INFO: 6}
_FACILITY = 16
SD_ID = "sim@32473"  # an enterprise-number SD-ID (32473 is reserved for examples)


class Stamps:
    """Event times as text; the date-time part is formatted once per second."""

    __slots__ = ("_iso", "_sec", "_space")

    def __init__(self) -> None:
        self._sec = -1
        self._space = ""
        self._iso = ""

    def _second(self, sec: int) -> None:
        self._sec = sec
        when = dt.datetime.fromtimestamp(sec, dt.UTC)
        self._space = when.strftime("%Y-%m-%d %H:%M:%S")
        self._iso = when.strftime("%Y-%m-%dT%H:%M:%S")

    def text(self, ts_ms: int) -> str:
        """`2026-01-19 15:30:01.234` (UTC)."""
        sec, ms = divmod(ts_ms, 1000)
        if sec != self._sec:
            self._second(sec)
        return f"{self._space}.{_MS3[ms]}"

    def iso(self, ts_ms: int) -> str:
        """`2026-01-19T15:30:01.234Z`."""
        sec, ms = divmod(ts_ms, 1000)
        if sec != self._sec:
            self._second(sec)
        return f"{self._iso}.{_MS3[ms]}Z"


def text_event(ev: SimEvent, stamps: Stamps) -> str:
    """The event in seed-002 text, without a final newline (traces span lines)."""
    trace = ev.trace
    svc = ev.service
    if trace is None:
        return (
            f"[{ev.level}] {stamps.text(ev.ts_ms)} {svc.name}/{svc.version} pod/{ev.pod}: "
            f"{ev.message} request_id={ev.request_id} user_id={ev.user_id} "
            f"correlation_id={ev.correlation_id}{ev.pairs_text}"
        )
    if trace.java:
        # The seed's header ends in ": " and the message goes on the next line.
        return (
            f"[ERROR] {stamps.text(ev.ts_ms)} {svc.name}/{svc.version} pod/{ev.pod}: \n"
            f"{ev.message}\n{ev.trace_text}"
        )
    return f"ERROR: {svc.name}/{svc.version} pod/{ev.pod} \n{ev.message}\n{ev.trace_text}"


def json_object(ev: SimEvent, stamps: Stamps) -> dict[str, Any]:
    svc = ev.service
    obj: dict[str, Any] = {
        "timestamp": stamps.iso(ev.ts_ms),
        "level": ev.level,
        "service": svc.name,
        "version": svc.version,
        "pod": ev.pod,
        "message": ev.message,
        "request_id": ev.request_id,
        "user_id": ev.user_id,
        "correlation_id": ev.correlation_id,
    }
    for key, value in ev.pairs:
        obj[key] = int(value) if value.isdigit() else value
    trace = ev.trace
    if trace is not None:
        # The text's Details, Recovery Action, Thread and id lines are keys of
        # their own here; only the trace itself goes to stack_trace.
        obj["scenario"] = trace.scenario.key
        obj["details"] = trace.details
        obj["recovery_action"] = trace.recovery
        obj["exception"] = trace.exception
        if trace.java:
            # "…\nThread: http-nio-8080-exec-23, Request: POST /api/v1/payments/8472\nRequest ID: …"
            thread_line = ev.trace_text.rpartition("\nThread: ")[2].partition("\n")[0]
            thread, _, request = thread_line.partition(", Request: ")
            method, _, route = request.partition(" ")
            obj.update(thread=thread, method=method, route=route, trace_style="java")
        else:
            obj["trace_style"] = "python"
        obj["stack_trace"] = trace.stack
    return obj


def text_batch(events: list[SimEvent], stamps: Stamps) -> bytes:
    return ("\n".join([text_event(ev, stamps) for ev in events]) + "\n").encode()


def json_batch(events: list[SimEvent], stamps: Stamps) -> bytes:
    dumps = orjson.dumps
    opt = orjson.OPT_APPEND_NEWLINE
    return b"".join([dumps(json_object(ev, stamps), option=opt) for ev in events])


BatchFormatter = Callable[[list[SimEvent], Stamps], bytes]
FORMATS: dict[str, BatchFormatter] = {"text": text_batch, "json": json_batch}


def _sd_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def syslog_message(ev: SimEvent, stamps: Stamps, fmt: str) -> bytes:
    """RFC 5424: app-name is the service, hostname the pod, the ids structured data.

    MSG is the message and, for an error, its whole trace: one syslog message
    per event, multi-line or not. With `fmt` "json" MSG is the JSON object.
    """
    svc = ev.service
    pri = _FACILITY * 8 + _SEVERITY[ev.level]
    sd = (
        f'[{SD_ID} version="{_sd_value(svc.version)}" request_id="{ev.request_id}" '
        f'user_id="{ev.user_id}" correlation_id="{ev.correlation_id}"]'
    )
    if fmt == "json":
        msg = orjson.dumps(json_object(ev, stamps)).decode()
    elif ev.trace is None:
        msg = ev.message + ev.pairs_text
    else:
        msg = f"{ev.message}\n{ev.trace_text}"
    return f"<{pri}>1 {stamps.iso(ev.ts_ms)} {ev.pod} {svc.name} - - {sd} {msg}".encode()
