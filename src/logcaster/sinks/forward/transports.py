"""Forward sinks: copies of the event stream sent to another collector (SPEC §5).

A forward sink makes one attempt per call and raises `SendError` when it
failed in a way worth retrying; the group (group.py) owns retries, breakers,
failover and the spool. Sinks by URL:

- `tcp://HOST:PORT`: plain lines, for any collector that reads lines. An
  attempt succeeds once the bytes are handed to the kernel: a receiver that
  dies with them unread loses them (no back channel), so prefer:
- `tcp://HOST:PORT?ack=1`: another LogCaster's acknowledged delivery
  (docs/acknowledged-delivery.md). An attempt succeeds when the receiver
  confirmed every line durable. Writes are pipelined: the next chunk goes out
  while the previous one waits for its acks (the receiver holds each burst's
  last line until the next line shows it is not a stack trace, so waiting
  for each chunk alone would cost its idle timeout every time).
- `tls://HOST:PORT[?ack=1]`: the same two over TLS. The receiver's
  certificate is verified (`TlsClient`: a CA file or the system's CAs, and
  its name) unless the sink says `verify: false`; a client certificate is
  presented when the sink has one. TLS cannot half-close: the receiver
  releases a held last line after its idle flush, as it does without EOF.
- `http://...` / `https://...`: NDJSON POST, one JSON event per line (the
  file sink's JSON form: the parsed event and its text). 2xx accepts the
  chunk; 408, 429, 5xx and transport errors are retried; 401, 403, 404,
  405, 407 and 421 say the sink is wrong (URL, credentials): a failure of
  the sink, retried and failed over, never dead letters. Any other 4xx
  rejects the chunk for good. A rejected chunk is split in halves and resent, down
  to the single events the receiver refuses: those become dead letters
  (`Rejection`) and the rest is delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import ssl
from collections import deque
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp

from logcaster.pipeline.batch import Batch
from logcaster.security.tls_client import client_context
from logcaster.segments.blocks import encode_json_payload
from logcaster.sinks.forward.target import parse_target

ACK_HANDSHAKE = b"#LOGCASTER ACK 1\n"
AUTH_OK = b"#OK AUTH\n"
ACK_OK = b"#OK ACK 1\n"


class SendError(Exception):
    """An attempt failed and may succeed later (connection, timeout, 5xx, 408, 429).

    `maybe_stored`: the receiver may hold the events anyway (the failure came
    after they were sent), so sending them again may duplicate them."""

    def __init__(self, message: str, *, maybe_stored: bool = True) -> None:
        super().__init__(message)
        self.maybe_stored = maybe_stored


@dataclass(frozen=True, slots=True)
class Rejection:
    """One event a receiver refused for good, with its answer (a dead letter)."""

    event_id: int
    received: float
    source: str
    text: bytes
    status: int
    reason: str


class ForwardSink(Protocol):
    name: str
    url: str

    async def deliver(self, chunk: list[Batch]) -> list[Rejection]:
        """Send `chunk` once; return the events refused for good, raise SendError to retry."""
        ...

    async def check(self) -> None:
        """A health check (connect, or GET the health URL); raises SendError when unhealthy."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class TlsClient:
    """How a sink checks its receiver and proves itself (a forward sink's options)."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    verify: bool = True

    def context(self) -> ssl.SSLContext:
        return client_context(
            ca_file=self.ca_file,
            cert_file=self.cert_file,
            key_file=self.key_file,
            verify=self.verify,
        )


def open_forward(
    url: str,
    *,
    name: str | None = None,
    timeout: float = 5.0,
    health_url: str | None = None,
    tls: TlsClient | None = None,
    token: str | None = None,
) -> ForwardSink:
    """The forward sink for `url`; ValueError names what is wrong with it.

    `health_url` (HTTP only): a GET answering 2xx means healthy; without it the
    health check is a TCP connect. `tls`: for tls:// and https:// (default: verify
    against the system's CAs). `token`: for a receiver with authentication on
    (another LogCaster): the AUTH line first (tcp, tls), or `Authorization: Bearer`."""
    target = parse_target(url)
    ctx = (tls or TlsClient()).context() if target.tls else None
    if target.scheme in ("tcp", "tls"):
        assert target.port is not None
        return TcpForward(
            name or url,
            url,
            target.host,
            target.port,
            ack=target.ack,
            timeout=timeout,
            tls=ctx,
            token=token,
        )
    return HttpForward(
        name or url, url, timeout=timeout, health_url=health_url, tls=ctx, token=token
    )


def chunk_lines(chunk: list[Batch]) -> bytes:
    """The chunk's event texts as lines (a multi-line event keeps its newlines)."""
    return b"".join(b"\n".join(batch.texts) + b"\n" for batch in chunk)


class TcpForward:
    """Lines over TCP, plain or with LogCaster acks (see the module docstring)."""

    def __init__(
        self,
        name: str,
        url: str,
        host: str,
        port: int,
        *,
        ack: bool,
        timeout: float,
        tls: ssl.SSLContext | None = None,
        token: str | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self._ssl = tls
        self._token = token
        self._host = host
        self._port = port
        self._ack = ack
        self._timeout = timeout
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # one chunk written at a time, in call order
        self._sent = 0  # lines written on this connection
        self._acked = 0  # lines the receiver confirmed on this connection
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    async def _connect(self) -> asyncio.StreamWriter:
        if self._writer is not None and not self._writer.is_closing():
            return self._writer
        # A connection closing under us: its waiters fail now, before the
        # counters start again for the new one.
        self._drop(SendError(f"{self.url}: connection closed"))
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl is not None else None,
                ),
                self._timeout,
            )
            if self._token is not None:
                writer.write(b"#LOGCASTER AUTH %s\n" % self._token.encode())
                answer = await asyncio.wait_for(reader.readline(), self._timeout)
                if answer != AUTH_OK:
                    writer.close()
                    raise SendError(
                        f"{self.url}: the receiver did not accept the token "
                        f"(answer {answer[:40]!r})",
                        maybe_stored=False,
                    )
            if self._ack:
                writer.write(ACK_HANDSHAKE)
                answer = await asyncio.wait_for(reader.readline(), self._timeout)
                if answer != ACK_OK:
                    writer.close()
                    raise SendError(
                        f"{self.url}: no ack handshake (answer {answer[:40]!r})",
                        maybe_stored=False,
                    )
        except (OSError, TimeoutError) as exc:
            raise SendError(
                f"{self.url}: cannot connect: {exc or 'timeout'}", maybe_stored=False
            ) from exc
        self._writer = writer
        self._sent = self._acked = 0
        if self._ack:
            self._reader_task = asyncio.create_task(self._read_acks(reader, writer))
        return writer

    async def _read_acks(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        error = "the receiver closed the connection"
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                word, _, count = line.strip().partition(b" ")
                if word == b"ACK" and count.isdigit():
                    self._acked = int(count)
                    while self._waiting and self._waiting[0][0] <= self._acked:
                        _, fut = self._waiting.popleft()
                        if not fut.done():
                            fut.set_result(None)
                elif word == b"NACK":
                    error = "the receiver refused lines (NACK: its queue is full)"
                    break
        except OSError as exc:
            error = f"connection lost: {exc}"
        if self._writer is writer:
            self._drop(SendError(f"{self.url}: {error}"))

    def _drop(self, exc: BaseException) -> None:
        """Forget the connection; every chunk still waiting for acks fails."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        while self._waiting:
            _, fut = self._waiting.popleft()
            if not fut.done():
                fut.set_exception(exc)

    async def deliver(self, chunk: list[Batch]) -> list[Rejection]:
        data = chunk_lines(chunk)
        async with self._lock:
            writer = await self._connect()
            self._sent += data.count(b"\n")
            done: asyncio.Future[None] | None = None
            if self._ack:
                done = asyncio.get_running_loop().create_future()
                self._waiting.append((self._sent, done))
            try:
                writer.write(data)
                await asyncio.wait_for(writer.drain(), self._timeout)
            except (OSError, TimeoutError) as exc:
                error = SendError(f"{self.url}: write failed: {exc or 'timeout'}")
                self._drop(error)
                raise error from exc
        if done is not None:
            try:
                await asyncio.wait_for(asyncio.shield(done), self._timeout)
            except TimeoutError as exc:
                error = SendError(f"{self.url}: no ack within {self._timeout} s")
                self._drop(error)
                raise error from exc
        return []

    async def check(self) -> None:
        async with self._lock:
            await self._connect()

    async def close(self) -> None:
        task, self._reader_task = self._reader_task, None
        self._drop(SendError(f"{self.url}: closed"))
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


# 4xx answers about the sink, not the events (a wrong URL or credentials): the
# sink fails (its breaker opens, events fail over or spool) instead of every
# event becoming a dead letter.
SINK_FAULTS = frozenset({401, 403, 404, 405, 407, 421})


def _retryable(status: int) -> bool:
    return status in (408, 429) or status >= 500


class HttpForward:
    """NDJSON POST (see the module docstring); one request in flight, in call order."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        timeout: float,
        health_url: str | None = None,
        tls: ssl.SSLContext | None = None,
        token: str | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self._ssl = tls  # https: the receiver checked with it (aiohttp's default otherwise)
        self._headers = {"Content-Type": "application/x-ndjson"}
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}
        self._headers.update(self._auth)
        self._health_url = health_url
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        # POSTs go out in call order, one at a time; each call encodes before its
        # turn (overlapping the POST before it) and waits on the previous call.
        self._last_turn: asyncio.Future[None] | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._ssl) if self._ssl is not None else None
            self._session = aiohttp.ClientSession(timeout=self._timeout, connector=connector)
        return self._session

    async def deliver(self, chunk: list[Batch]) -> list[Rejection]:
        previous = self._last_turn
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._last_turn = turn
        try:
            # Parsing and encoding is CPU work: off the event loop.
            lines = await asyncio.to_thread(_json_lines, chunk)
            if previous is not None:
                await asyncio.wait([previous])  # its outcome is its caller's business
            rejected: list[Rejection] = []
            accepted = [False]
            try:
                await self._post(lines, 0, len(lines), rejected, accepted)
            except SendError as exc:
                if accepted[0]:
                    exc.maybe_stored = True  # part of the chunk was taken before
                raise
            return rejected
        finally:
            if previous is None or previous.done():
                turn.set_result(None)
            else:
                # Cancelled while waiting for its turn: the next call still waits
                # for the POST before this one.
                previous.add_done_callback(lambda _: turn.set_result(None))

    async def _post(
        self,
        lines: list[tuple[Batch, int, bytes]],
        lo: int,
        hi: int,
        rejected: list[Rejection],
        accepted: list[bool],
    ) -> None:
        """POST lines[lo:hi]; on a permanent 4xx split it to find the refused events."""
        body = b"\n".join(line for _, _, line in lines[lo:hi]) + b"\n"
        try:
            # A file-like body is streamed in pieces (raw bytes past 1 MiB would
            # be written in one go, holding the event loop).
            async with self._client().post(
                self.url, data=io.BytesIO(body), headers=self._headers
            ) as response:
                status = response.status
                reason = (await response.text(errors="replace"))[:200] or response.reason or ""
        except aiohttp.ClientConnectorError as exc:
            raise SendError(f"{self.url}: cannot connect: {exc}", maybe_stored=False) from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise SendError(f"{self.url}: {type(exc).__name__}: {exc}") from exc
        if status < 300:
            accepted[0] = True
            return
        if _retryable(status) or status < 400 or status in SINK_FAULTS:
            # An answer that refuses is an answer: nothing was taken.
            raise SendError(f"{self.url}: HTTP {status} {reason}".strip(), maybe_stored=False)
        if hi - lo > 1:
            mid = (lo + hi) // 2
            await self._post(lines, lo, mid, rejected, accepted)
            await self._post(lines, mid, hi, rejected, accepted)
            return
        batch, i, _ = lines[lo]
        rejected.append(
            Rejection(
                batch.first_id + i, batch.received_at, batch.source, batch.texts[i], status, reason
            )
        )

    async def check(self) -> None:
        if self._health_url is not None:
            try:
                async with self._client().get(self._health_url, headers=self._auth) as response:
                    status = response.status
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                raise SendError(
                    f"{self._health_url}: {type(exc).__name__}: {exc}", maybe_stored=False
                ) from exc
            if status >= 300:
                raise SendError(f"{self._health_url}: HTTP {status}", maybe_stored=False)
            return
        parts = urlsplit(self.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(parts.hostname, port), self._timeout.total
            )
        except (OSError, TimeoutError) as exc:
            raise SendError(
                f"{self.url}: cannot connect: {exc or 'timeout'}", maybe_stored=False
            ) from exc
        writer.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _json_lines(chunk: list[Batch]) -> list[tuple[Batch, int, bytes]]:
    """Each event's JSON line, with its batch and index (for dead letters)."""
    out: list[tuple[Batch, int, bytes]] = []
    for batch in chunk:
        payload = encode_json_payload(
            batch.first_id, batch.texts, batch.received_at, batch.source, batch.cached_events
        )
        out.extend((batch, i, line) for i, line in enumerate(payload.split(b"\n")[:-1]))
    return out
