"""One IRC client's connection: reading lines, its state, its output.

Input is bounded: a line longer than the protocol allows (512 bytes, 8191 of
tags) gets 417 and is dropped, and a client is held to `INPUT_RATE` commands a
second (with a burst): past it the server stops reading from it for a moment,
as ircds' "fake lag" does, so one client cannot flood others' queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, cast

from logcaster.frontends.irc import numerics as N
from logcaster.frontends.irc.message import (
    MAX_INPUT_BYTES,
    ParseError,
    build,
    parse,
    too_long,
)
from logcaster.frontends.irc.sendq import Output
from logcaster.security.guard import Peer
from logcaster.security.roles import ANONYMOUS, Principal

if TYPE_CHECKING:
    from logcaster.frontends.irc.channels import Channel
    from logcaster.frontends.irc.server import IrcServer

INPUT_RATE = 10.0  # commands a second a client may send, on average
INPUT_BURST = 40.0
WRITE_HIGH_WATER = 64 * 1024  # bytes buffered for a client before it counts as not reading


class IrcClient(asyncio.Protocol):
    """A connection's protocol object, and the client's state on the server."""

    def __init__(self, server: IrcServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.peer = Peer("", "")
        self.nick = "*"
        self.user = ""
        self.realname = ""
        self.host = ""
        self.registered = False
        self.registering = False  # the token is being checked
        self.capping = False  # CAP LS seen, no CAP END yet: registration waits
        self.password: str | None = None
        self.principal: Principal = ANONYMOUS
        self.channels: set[Channel] = set()
        self.modes: set[str] = set()
        self.away: str | None = None
        self.connected_at = time.monotonic()
        self.signon = int(time.time())
        self.last_heard = time.monotonic()
        self.pinged_at: float | None = None  # a PING sent, no answer yet
        self.closing = False
        self._buffer = bytearray()
        self._discarding = False  # inside an over-long line: dropped to its end
        self._tokens = INPUT_BURST
        self._refilled = time.monotonic()
        self._paused = False
        self._writer: asyncio.Task[None] | None = None
        irc = server.config
        self.output = Output(
            self._write,
            irc.rate,
            irc.burst,
            irc.sendq_lines,
            irc.max_replies,
            self._skipped_notice,
        )

    # --- asyncio.Protocol -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = transport = cast(asyncio.Transport, transport)
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        self.peer = Peer.of(transport.get_extra_info("peername"))
        host = self.peer.address or "unknown"
        self.host = "0" + host if host.startswith(":") else host  # ::1 -> 0::1, a word
        self._writer = asyncio.get_running_loop().create_task(self.output.run())
        self.server.connected(self)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._take_lines()

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        # Closing for good: lines still buffered (waiting for the input rate or a
        # token check) must not be handled after the server forgot the client.
        self.closing = True
        self._buffer.clear()
        self.output.close()
        if self._writer is not None:
            self._writer.cancel()
        self.server.disconnected(self, "Connection closed" if exc is None else "Connection reset")

    def pause_writing(self) -> None:
        self.output.blocked(True)

    def resume_writing(self) -> None:
        self.output.blocked(False)

    # --- input ------------------------------------------------------------------------

    def read_on(self) -> None:
        """Go on with the lines that waited for registration's token check."""
        if not self._paused and self.transport is not None and not self.closing:
            self.transport.resume_reading()
            self._take_lines()

    def _take_lines(self) -> None:
        buffer = self._buffer
        while not self.closing:
            if self.registering:
                if self.transport is not None:
                    self.transport.pause_reading()  # bounded: one read's worth waits
                return
            end = buffer.find(b"\n")
            if end < 0:
                if len(buffer) > MAX_INPUT_BYTES:
                    del buffer[:]
                    if not self._discarding:
                        self._discarding = True
                        self.numeric(N.ERR_INPUTTOOLONG, "Input line was too long")
                return
            raw = bytes(buffer[:end])
            del buffer[: end + 1]
            if self._discarding:
                self._discarding = False  # the rest of the over-long line
                continue
            if too_long(raw):
                self.numeric(N.ERR_INPUTTOOLONG, "Input line was too long")
                continue
            if not self._spend_input():
                # Over the input rate: the line waits (put back), reading pauses.
                buffer[:0] = raw + b"\n"
                return
            self._handle(raw)

    def _spend_input(self) -> bool:
        now = time.monotonic()
        self._tokens = min(INPUT_BURST, self._tokens + (now - self._refilled) * INPUT_RATE)
        self._refilled = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        if not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
            asyncio.get_running_loop().call_later(
                (1 - self._tokens) / INPUT_RATE, self._resume_reading
            )
        return False

    def _resume_reading(self) -> None:
        self._paused = False
        if self.transport is not None and not self.closing and not self.registering:
            self.transport.resume_reading()
            self._take_lines()

    def _handle(self, raw: bytes) -> None:
        # NUL and a CR inside the line are not IRC: dropped, so nothing echoes them.
        text = raw.decode("utf-8", "replace").replace("\0", "").replace("\r", "")
        if not text.strip(" "):
            return  # an empty line: ignored
        try:
            message = parse(text)
        except ParseError:
            self.numeric(N.ERR_UNKNOWNCOMMAND, "*", "Unknown command")
            return
        self.last_heard = time.monotonic()
        self.pinged_at = None
        self.server.dispatch(self, message)

    # --- output -----------------------------------------------------------------------

    @property
    def mask(self) -> str:
        return f"{self.nick}!{self.user or '~u'}@{self.host}"

    def send(self, line: bytes) -> None:
        """Queue a reply (never skipped)."""
        self.output.reply(line)

    def numeric(self, code: str, *params: str) -> None:
        """A numeric reply from the server, addressed to this client's nick. Middle
        parameters may echo what the client sent (`NICK :a b` gets 432): one that
        is not a word is shown as one."""
        *middle, last = params if params else ("",)
        words = [_word(p) for p in middle]
        self.output.reply(build(self.server.name, code, self.nick, *words, last))

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _skipped_notice(self, count: int) -> bytes:
        return build(
            self.server.bot_mask,
            "NOTICE",
            self.nick,
            f"{count:,} log lines were skipped: they came faster than this connection "
            "took them (irc.rate, or your client reading slowly)",
        )

    def close(self, reason: str, *, abort: bool = False) -> None:
        """Say ERROR and close; the queued lines are dropped. `abort`: for a client
        that does not read, drop what the socket still buffers too."""
        if self.closing or self.transport is None:
            return
        self.closing = True
        replies = self.output.close()
        if abort:
            self.transport.abort()
            return
        with contextlib.suppress(Exception):
            # The replies still queued go first (464 before the ERROR it explains).
            closing = build(None, "ERROR", f"Closing Link: {self.host} ({reason})")
            self.transport.write(b"".join([*replies, closing]))
        self.transport.close()


def _word(param: str) -> str:
    """`param` as a middle parameter: no spaces, not empty, no leading colon."""
    if param and " " not in param and not param.startswith(":"):
        return param
    return param.replace(" ", "_").lstrip(":") or "*"
