"""A stream connection's gate: its AUTH line or certificate, and its rate limits.

Mixed into `StreamConnection` (tcp.py), whose state it reads and sets: with
`auth.enabled` the stream is held until its first line, `#LOGCASTER AUTH
<token>`, is checked (`#OK AUTH`; or `ERROR: unauthorized`, then the
connection closes cleanly and nothing of it is taken); syslog takes a client
certificate instead. Every read counts against the client's rate limits
(address and token); a client in debt is not read until it is paid.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from logcaster.pipeline.batch import Texts, texts_size
from logcaster.security.guard import Peer
from logcaster.security.roles import Permission, Principal

if TYPE_CHECKING:
    from logcaster.sources.stream_listener import StreamIngestServer

AUTH_PREFIX = b"#LOGCASTER AUTH "
AUTH_ACCEPTED = b"#OK AUTH\n"
UNAUTHORIZED = b"ERROR: unauthorized\n"
MAX_AUTH_LINE = 256
REVALIDATE_S = 1.0  # how often an open connection's token is checked again


class StreamGate:
    # The connection's state this part reads and sets (tcp.py owns it).
    _server: StreamIngestServer
    _transport: asyncio.Transport | None
    _peer: Peer
    _ip: str
    _principal: Principal | None
    _auth_head: bytes | None
    _checking: bool
    _limited: bool
    _closed: bool
    _refused_at: int | None
    _discard_left: int | None
    _active_at: float
    _opened_at: float
    _auth_checked: float

    def _update_reading(self) -> None:
        raise NotImplementedError

    def _process(self, data: bytes) -> None:
        raise NotImplementedError

    def _answer_and_close(self, answer: bytes) -> None:
        raise NotImplementedError

    def _authenticate(self, data: bytes) -> bytes:
        """Hold the stream until its first line, the AUTH line, is checked; the rest
        once accepted (returned at once when it was accepted before)."""
        head = (self._auth_head or b"") + data
        if self._principal is not None:
            self._auth_head = None
            return head
        self._auth_head = head
        if self._checking:
            return b""
        end = head.find(b"\n")
        if end < 0:
            if len(head) >= MAX_AUTH_LINE or not AUTH_PREFIX.startswith(head[: len(AUTH_PREFIX)]):
                self._admit(None, "no token")
            return b""
        if not head.startswith(AUTH_PREFIX):
            self._admit(None, "no token")
            return b""
        token = head[len(AUTH_PREFIX) : end].strip().decode("ascii", "replace")
        self._auth_head = head[end + 1 :]
        self._checking = True
        self._update_reading()
        task = asyncio.get_running_loop().create_task(self._check(token))
        self._server.checks.add(task)
        task.add_done_callback(self._server.checks.discard)
        return b""

    async def _check(self, token: str) -> None:
        principal = await self._server.guard.authenticate(token, self._peer)
        self._checking = False
        if self._closed:
            return
        if principal is None:
            self._refuse_unauthorized()  # recorded by the guard
            return
        if self._admit(principal):
            transport = self._transport
            if transport is not None and not transport.is_closing():
                transport.write(AUTH_ACCEPTED)
            rest, self._auth_head = self._auth_head or b"", None
            self._update_reading()
            if rest:
                self._process(rest)

    def _admit(self, principal: Principal | None, reason: str | None = None) -> bool:
        """Accept `principal` if it may send; else refuse the connection."""
        server = self._server
        if principal is None and reason is not None:
            server.guard.refuse(self._peer, reason)
        elif principal is not None and server.guard.allow(
            principal, Permission.SEND, "ingest", self._peer, record=False
        ):
            self._principal = principal
            return True
        self._refuse_unauthorized()
        return False

    def _refuse_unauthorized(self) -> None:
        """`ERROR: unauthorized`, then a clean close; nothing of the stream is taken."""
        self._auth_head = None
        self._refused_at = 0
        self._answer_and_close(UNAUTHORIZED)

    def check_auth(self, now: float) -> None:
        """From the listener's sweep: a connection that has not authenticated
        within auth.login_timeout is refused (a client trickling its AUTH line is a
        slowloris); one whose token was revoked or has expired is cut, within
        about a second (the token file is looked at once a second)."""
        principal = self._principal
        transport = self._transport
        if transport is None or transport.is_closing() or self._refused_at is not None:
            return
        if principal is None:
            waited = now - self._opened_at
            if not self._checking and waited >= self._server.guard.security.login_timeout:
                self._admit(None, "no token in time")
            return
        if principal.token_id is None or now - self._auth_checked < REVALIDATE_S:
            return
        self._auth_checked = now
        guard = self._server.guard
        if not guard.still_valid(principal):
            guard.cut(principal, self._peer)
            transport.write(UNAUTHORIZED)
            transport.close()  # what was read before is kept (connection_lost flushes)

    def _limit(self, texts: Texts) -> None:
        """Count a read against this client's rate limits; hold reading while in debt."""
        principal = self._principal
        name = principal.name if principal is not None else ""
        wait = self._server.guard.limits.ingest(
            (self._ip, name), len(texts), texts_size(texts), self._server.name
        )
        if wait > 0 and not self._limited:
            self._limited = True
            self._update_reading()
            asyncio.get_running_loop().call_later(wait, self._unlimit)

    def _unlimit(self) -> None:
        # Other connections of this client may have added to its debt meanwhile.
        principal = self._principal
        client = (self._ip, principal.name if principal is not None else "")
        wait = self._server.guard.limits.ingest_wait(client)
        if wait > 0 and not self._closed:
            asyncio.get_running_loop().call_later(wait, self._unlimit)
            return
        self._limited = False
        self._active_at = time.monotonic()
        self._update_reading()
