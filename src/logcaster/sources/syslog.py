"""Syslog listener (SPEC §2): UDP datagrams and TCP streams on one port.

TCP framing is detected per message (RFC 6587): a message that starts with a
digit is octet-counted (`LEN SP MSG`), anything else runs to the next newline
or NUL. Python's SysLogHandler ends each TCP message with NUL only, and its
messages may contain newlines (a logged traceback): a newline is part of the
message when a NUL follows before anything that starts a new message, and once a
connection has ended a message with NUL, a newline not followed by a message
start waits for more data instead of ending the message.
util-linux `logger` sends octet-counted frames over TCP, rsyslog forwarding and
most others use newlines; both can arrive on one port, even on one connection.
Parsing of RFC 5424/3164 is done later, like every other event (parse.py).
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import ssl

from logcaster.component import Endpoint, listening
from logcaster.config import Config
from logcaster.log import log_event
from logcaster.metrics.registry import Readings
from logcaster.pipeline.framing import TRUNCATION_MARK
from logcaster.pipeline.pipeline import Pipeline
from logcaster.security.guard import Guard, Peer
from logcaster.sources.stream_listener import StreamIngestServer
from logcaster.stats import Stats

logger = logging.getLogger("logcaster.sources.syslog")

UDP_SOURCE = "syslog-udp"  # datagrams' source (and listener label); TCP's is syslog-tcp:ip:port

# Longest octet count prefix we accept ("1048576 " is 8 bytes).
_MAX_COUNT_DIGITS = 9
# A newline followed by what starts a message: "<PRI>" or an octet count.
_NEXT_MESSAGE = re.compile(rb"\n[<0-9]")
_MESSAGE_START = b"<0123456789"


class SyslogStreamFramer:
    """Octet-counted or newline-framed syslog messages from one TCP stream."""

    __slots__ = ("_buf", "_discard", "_max", "_nul_framed", "_skip_line", "truncated")

    holding = False  # syslog messages are never joined into multi-line events
    held_lines = 0

    def __init__(self, max_message_bytes: int) -> None:
        self._max = max_message_bytes
        self._buf = b""
        self._discard = 0  # bytes of an over-long octet-counted message still to skip
        self._skip_line = False  # skipping the rest of an over-long unframed message
        self._nul_framed = False  # this connection has ended a message with NUL
        self.truncated = 0

    @property
    def partial(self) -> bool:
        return bool(self._buf) or self._discard > 0 or self._skip_line

    def _cut(self, message: bytes) -> bytes:
        if len(message) <= self._max:
            return message
        self.truncated += 1
        return message[: self._max - len(TRUNCATION_MARK)] + TRUNCATION_MARK

    def feed_read(self, data: bytes) -> list[bytes]:
        return self.feed(data)

    def feed(self, data: bytes) -> list[bytes]:
        if self._discard:
            skip = min(self._discard, len(data))
            self._discard -= skip
            data = data[skip:]
        if self._skip_line:
            # The rest of an over-long message already cut: drop it up to its terminator.
            nul = data.find(b"\x00")
            nl = -1 if self._nul_framed else data.find(b"\n", 0, nul if nul >= 0 else len(data))
            end = nl if nl >= 0 else nul
            if end < 0:
                return []
            self._skip_line = False
            data = data[end + 1 :]
        buf = self._buf + data if self._buf else data
        out: list[bytes] = []
        pos = 0
        n = len(buf)
        next_nul = -2  # position of the first NUL at or after pos; -1: none; -2: not searched
        while pos < n:
            first = buf[pos]
            if 0x30 <= first <= 0x39:  # a digit: octet counting
                space = buf.find(b" ", pos, pos + _MAX_COUNT_DIGITS + 1)
                if space < 0:
                    if n - pos <= _MAX_COUNT_DIGITS:
                        break  # the count is not complete yet
                    space = -1
                if space > 0 and buf[pos:space].isdigit():
                    length = int(buf[pos:space])
                    start = space + 1
                    end = start + length
                    if end <= n:
                        out.append(self._cut(buf[start:end].rstrip(b"\r\n\x00")))
                        pos = end
                        continue
                    if length > self._max:
                        # Keep the head now, skip the rest as it arrives: memory stays bounded.
                        have = n - start
                        if have >= self._max:
                            out.append(self._cut(buf[start:n]))
                            self._discard = length - have
                            pos = n
                            continue
                    break  # wait for the rest of the message
            # Newline or NUL framing (also the fallback for a line that merely starts
            # with a digit).
            if next_nul == -2 or 0 <= next_nul < pos:
                next_nul = buf.find(b"\x00", pos)  # each byte is searched once per feed
            nul = next_nul
            nl = buf.find(b"\n", pos, nul if nul >= 0 else n)
            if nl < 0:
                end = nul  # NUL first (Python's SysLogHandler), or no terminator yet
            elif nul >= 0 and _NEXT_MESSAGE.search(buf, pos, nul) is None:
                end = nul  # newlines inside a NUL-terminated message (a traceback)
            elif self._nul_framed and (nl + 1 == n or buf[nl + 1] not in _MESSAGE_START):
                end = -1  # a NUL-framed message continues past its newline: wait for the NUL
            else:
                end = nl
            if end < 0:
                if n - pos > self._max:
                    # Keep the head of an over-long message, skip the rest up to its end.
                    out.append(self._cut(buf[pos:n]))
                    pos = n
                    self._skip_line = True
                break
            if end == nul and (end + 1 == n or buf[end + 1] in _MESSAGE_START):
                self._nul_framed = True  # a framing NUL, not a stray one inside a line
            line = buf[pos:end].rstrip(b"\r\n\x00")
            if line:
                out.append(self._cut(line))
            pos = end + 1
        self._buf = buf[pos:]
        return out

    def flush_held(self) -> list[bytes]:
        return []

    def close(self) -> list[bytes]:
        self._skip_line = False
        rest, self._buf = self._buf.strip(b"\r\n\x00 "), b""
        return [self._cut(rest)] if rest else []


class _SyslogDatagrams(asyncio.DatagramProtocol):
    """UDP: one message per datagram. Datagrams of one loop turn go out as one batch."""

    def __init__(self, listener: SyslogListener) -> None:
        self._listener = listener
        self._pending: list[bytes] = []
        self._scheduled = False

    def datagram_received(self, data: bytes, addr: tuple[str | bytes, int]) -> None:
        message = data.rstrip(b"\r\n\x00")
        if not message:
            return
        listener = self._listener
        address = str(addr[0])
        if not listener.guard.udp_allowed(address):
            listener.refused_datagram(message, address)
            return
        limits = listener.guard.limits
        if limits.ingest_on and limits.ingest((address, ""), 1, len(message), UDP_SOURCE) > 0:
            listener.pipeline.discard([message], UDP_SOURCE, "rate_limited")
            return
        if len(message) > self._listener.max_bytes:
            self._listener.stats.truncate(UDP_SOURCE, 1)
            message = message[: self._listener.max_bytes - len(TRUNCATION_MARK)] + TRUNCATION_MARK
        self._pending.append(message)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if self._pending:
            texts, self._pending = self._pending, []
            self._listener.submit_datagrams(texts)


class SyslogListener:
    """The syslog source: a TCP stream listener and a UDP endpoint on the same port."""

    option = "syslog.port"

    def __init__(
        self,
        config: Config,
        pipeline: Pipeline,
        stats: Stats,
        guard: Guard,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """`tls`: the TCP side serves TLS (RFC 5425) with it; UDP stays plain."""
        assert config.syslog.port is not None
        self.host = config.syslog.host
        self.max_bytes = config.syslog.max_message_bytes
        self._udp_buffer = config.syslog.udp_receive_buffer
        self.stats = stats
        self.pipeline = pipeline
        self.tcp = StreamIngestServer(
            "syslog-tcp",
            config.syslog.host,
            config.syslog.port,
            config,
            pipeline,
            stats,
            lambda: SyslogStreamFramer(self.max_bytes),
            option=self.option,
            guard=guard,
            tls=tls,
        )
        self.guard = guard
        self._udp: asyncio.DatagramTransport | None = None
        self._udp_protocol: _SyslogDatagrams | None = None
        self.port = config.syslog.port
        self.hosts: list[str] = []  # the addresses bound (TCP; UDP binds the same), after start

    async def start(self) -> None:
        await self.tcp.start()
        self.port = self.tcp.port  # UDP takes the same number, also when it was 0
        self.hosts = self.tcp.hosts
        loop = asyncio.get_running_loop()
        with listening(self.option, self.host, self.port):
            self._udp, self._udp_protocol = await loop.create_datagram_endpoint(
                lambda: _SyslogDatagrams(self), local_addr=(self.host, self.port)
            )
        self._size_receive_buffer(self._udp.get_extra_info("socket"))

    def _size_receive_buffer(self, sock: socket.socket) -> None:
        """Ask for syslog.udp_receive_buffer: bursts and loop stalls (a big query,
        a GC pause) then wait in the kernel instead of being dropped by it."""
        wanted = self._udp_buffer
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, wanted)
        got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2  # Linux doubles it
        if got < wanted:
            log_event(
                logger,
                logging.WARNING,
                "udp_receive_buffer_capped",
                wanted=wanted,
                got=got,
                hint="raise net.core.rmem_max to give syslog.udp_receive_buffer",
            )

    @property
    def endpoint(self) -> Endpoint | None:
        return self.tcp.endpoint

    def readings(self, out: Readings) -> None:
        self.tcp.readings(out)  # UDP has no connections; its drops are the pipeline's

    def submit_datagrams(self, texts: list[bytes]) -> None:
        queue = self.pipeline.queue
        # UDP cannot push back. Past twice the queue's bounds the datagrams are
        # dropped and counted rather than let memory grow without limit.
        if queue.events >= 2 * queue.max_events or queue.nbytes >= 2 * queue.max_bytes:
            self.pipeline.discard(texts, UDP_SOURCE, "udp_queue_full")
            return
        self.pipeline.submit(texts, UDP_SOURCE)

    def refused_datagram(self, message: bytes, address: str) -> None:
        """A datagram from outside auth.udp_networks: counted as dropped, audited
        once a minute per address."""
        self.pipeline.discard([message], UDP_SOURCE, "unauthorized")
        self.guard.refuse_quietly(Peer(address, address), "network not allowed")

    async def stop(self, deadline: float | None = None) -> None:
        if self._udp_protocol is not None:
            self._udp_protocol.flush()
        if self._udp is not None:
            self._udp.close()
        await self.tcp.stop(deadline)

    async def close(self) -> None:
        await self.tcp.close()
