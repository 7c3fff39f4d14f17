"""`logcaster tail`: the newest events, and with `-f` every new one, from the
server's live tail (`GET /api/v1/tail`, Server-Sent Events; docs/http-api.md).

    for item in TailStream("http://127.0.0.1:8080", [("level", "ERROR")], follow=True):
        ...  # a TailEvent (the event as a dict) or a TailNotice (skipped, reset, ...)

Without `follow`, the stream asks for `backlog=N` (the newest N matching
events the server's memory holds) and ends at the server's `live` marker.
With it, the stream goes on; a dropped connection, or the server's `end` when
it stops, is followed by a reconnect with `Last-Event-ID` (backoff 0.1 s
doubling to 5 s, with jitter, until it connects again): the server replays
from memory what came meanwhile, so nothing still buffered is missed or
repeated, and what was not is told by a `skipped` notice. The first
connection is not retried: a wrong URL says so at once.

Synchronous (http.client), one socket, bounded: an SSE line past
`MAX_LINE_BYTES` is an error, and a stream silent for `IDLE_TIMEOUT_S`
(heartbeats included) is taken for dead and reconnected.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import random
import ssl
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

import orjson

from logcaster.event import Event
from logcaster.frontends.rows import format_row
from logcaster.security.neutralize import json_safe, neutral
from logcaster.security.tls_client import client_context, wanted

TAIL_PATH = "/api/v1/tail"
IDLE_TIMEOUT_S = 60.0  # 4 heartbeats at the server's default http.tail_heartbeat_s
MAX_LINE_BYTES = 64 * 1024 * 1024
RETRY_FIRST_S = 0.1
RETRY_MAX_S = 5.0
EXIT_USAGE = 2


class TailError(Exception):
    """The server refused the tail (`status`: its HTTP status, 0 when unreachable)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class TailEvent:
    id: int
    doc: dict[str, Any]  # the event as the server sent it (Event.to_dict's shape)
    raw: bytes  # its JSON text


@dataclass(frozen=True, slots=True)
class TailNotice:
    kind: str  # skipped, reset, live, end, reconnecting, reconnected
    doc: dict[str, Any] = field(default_factory=dict)


class _Dropped(Exception):
    """The connection ended (the stream's `end` too): reconnect when following."""


def filter_params(words: list[str]) -> list[tuple[str, str]]:
    """`key=value` words as QUERY takes them; a bare word is a keyword."""
    params = []
    for word in words:
        key, sep, value = word.partition("=")
        params.append((key, value) if sep and key else ("keyword", word))
    return params


class TailStream:
    """The items of a live tail, reconnecting while following (module doc)."""

    def __init__(
        self,
        url: str,
        params: list[tuple[str, str]],
        *,
        follow: bool,
        backlog: int = 10,
        idle_timeout: float = IDLE_TIMEOUT_S,
        tls: ssl.SSLContext | None = None,
        token: str | None = None,
    ) -> None:
        """`tls`: for an https URL, how the server is checked and which client
        certificate is shown (security/tls_client.py); None: the system's CAs.
        `token`: sent as `Authorization: Bearer` (a server with auth on)."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TailError(f"not an http(s) URL: {url!r}")
        self._parts = parts
        self.params = params
        self._ssl = tls
        self._token = token
        self.follow = follow
        self.backlog = backlog
        self.idle_timeout = idle_timeout
        self.last_id: int | None = None  # the stream's position (SSE id)
        self.resumed_after: int | None = None  # the position the last connection asked for
        self._conn: http.client.HTTPConnection | None = None

    def __iter__(self) -> Iterator[TailEvent | TailNotice]:
        delay = RETRY_FIRST_S
        connected = False
        try:
            while True:
                try:
                    for item in self._connect_and_read():
                        if not connected:
                            connected = True
                        elif delay > RETRY_FIRST_S:  # the first item after a reconnect
                            yield TailNotice("reconnected", {"after_id": self.resumed_after})
                            delay = RETRY_FIRST_S
                        yield item
                        if not self.follow and isinstance(item, TailNotice) and item.kind == "live":
                            return
                    raise _Dropped("the server closed the stream")
                except (_Dropped, OSError, http.client.HTTPException, TailError) as exc:
                    retry = self.follow and connected and _retryable(exc)
                    if not retry:
                        if isinstance(exc, TailError):
                            raise
                        raise TailError(f"{self._where()}: {_reason(exc)}") from None
                    if delay == RETRY_FIRST_S:
                        yield TailNotice("reconnecting", {"reason": _reason(exc)})
                    time.sleep(delay * random.uniform(0.5, 1.0))
                    delay = min(delay * 2, RETRY_MAX_S)
        finally:
            self.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _where(self) -> str:
        return f"{self._parts.scheme}://{self._parts.netloc}{TAIL_PATH}"

    def _connect_and_read(self) -> Iterator[TailEvent | TailNotice]:
        self.close()
        parts = self._parts
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(
                parts.hostname or "",
                parts.port,
                timeout=self.idle_timeout,
                context=self._ssl or client_context(),
            )
        else:
            conn = http.client.HTTPConnection(
                parts.hostname or "", parts.port, timeout=self.idle_timeout
            )
        self._conn = conn
        params = list(self.params)
        headers = {"Accept": "text/event-stream"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        self.resumed_after = self.last_id
        if self.last_id is not None:
            headers["Last-Event-ID"] = str(self.last_id)
        elif self.backlog:
            params.append(("backlog", str(self.backlog)))
        query = urllib.parse.urlencode(params)
        conn.request("GET", TAIL_PATH + ("?" + query if query else ""), headers=headers)
        response = conn.getresponse()
        if response.status != 200:
            raise TailError(_error_text(response), response.status)
        yield from self._messages(response)

    def _messages(self, response: http.client.HTTPResponse) -> Iterator[TailEvent | TailNotice]:
        """SSE messages (WHATWG's event stream format), as items."""
        kind = ""
        data: list[bytes] = []
        while True:
            line = response.readline(MAX_LINE_BYTES + 2)
            if not line:
                return
            if not line.endswith(b"\n"):
                raise _Dropped(f"a stream line over {MAX_LINE_BYTES} bytes")
            line = line.rstrip(b"\r\n")
            if line:
                name, _, value = line.partition(b":")
                value = value[1:] if value.startswith(b" ") else value
                if name == b"data":
                    data.append(value)
                elif name == b"event":
                    kind = value.decode()
                elif name == b"id" and value.isdigit():
                    self.last_id = int(value)  # a block with only an id moves it too
                continue
            if data:
                yield _item(kind, b"\n".join(data))
            kind, data = "", []


def _item(kind: str, data: bytes) -> TailEvent | TailNotice:
    doc = orjson.loads(data)
    if kind in ("", "message"):
        return TailEvent(int(doc["id"]), doc, data)
    if kind == "end":
        raise _Dropped(f"the server ended the stream ({doc.get('reason')})")
    return TailNotice(kind, doc)


def _retryable(exc: Exception) -> bool:
    # A refused filter stays refused; 503 (draining, too many tails) and the rest pass.
    return not (isinstance(exc, TailError) and 400 <= exc.status < 500)


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _error_text(response: http.client.HTTPResponse) -> str:
    body = response.read(64 * 1024)
    try:
        message = orjson.loads(body)["error"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        message = body.decode("utf-8", "replace").strip() or response.reason
    return f"HTTP {response.status}: {message}"


def notice_text(item: TailNotice) -> str | None:
    """What a person reads on stderr about a notice (None: nothing to say)."""
    doc = item.doc
    if item.kind == "skipped":
        why = {
            "slow": "this tail fell behind",
            "not_in_memory": "no longer in the server's memory",
        }.get(str(doc.get("reason")), str(doc.get("reason")))
        ids = f"{doc.get('first_id')}..{doc.get('last_id')}"
        return f"skipped {doc.get('count')} events, ids {ids} ({why})"
    if item.kind == "reset":
        return f"the server's ids restarted below {doc.get('since')}: following from its newest"
    if item.kind == "reconnecting":
        return f"connection lost ({doc.get('reason')}); reconnecting"
    if item.kind == "reconnected":
        return f"reconnected, resuming after id {doc.get('after_id')}"
    return None


def run(
    url: str,
    words: list[str],
    *,
    follow: bool,
    lines: int,
    as_json: bool,
    out: TextIO | None = None,
    err: TextIO | None = None,
    ca_file: str | None = None,
    cert_file: str | None = None,
    key_file: str | None = None,
    token: str | None = None,
) -> int:
    """The `logcaster tail` command: 0 done, 1 the server failed us, 2 refused, 130 Ctrl-C.

    `ca_file`, `cert_file`, `key_file`: for an https URL (the server verified);
    `token`: a viewer's token, for a server with authentication on."""
    out = out or sys.stdout
    err = err or sys.stderr
    if lines < 0:
        print("logcaster tail: -n must be 0 or more", file=err)
        return EXIT_USAGE
    try:
        tls = wanted(False, ca_file, cert_file, key_file)
        stream = TailStream(
            url, filter_params(words), follow=follow, backlog=lines, tls=tls, token=token
        )
        for item in stream:
            if isinstance(item, TailEvent):
                # Rows and JSON made safe here too, not trusting the server to have.
                if as_json:
                    out.write(json_safe(item.raw).decode())
                else:
                    out.write(format_row(Event.from_dict(item.doc)))
                out.write("\n")
                out.flush()
                continue
            notice = notice_text(item)
            if notice is not None:
                print(f"logcaster tail: {neutral(notice)}", file=err, flush=True)
    except TailError as exc:
        print(f"logcaster tail: {neutral(str(exc))}", file=err)
        return EXIT_USAGE if 400 <= exc.status < 500 else 1
    except OSError as exc:  # a CA, certificate or key file that cannot be used
        print(f"logcaster tail: TLS: {exc}", file=err)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `logcaster tail -f | head`: the reader is gone; not an error.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
    return 0
