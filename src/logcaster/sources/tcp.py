"""TCP line ingest (SPEC §2): one `LineFramer` per connection, batches into the pipeline.

Each read is framed at once and submitted as one batch; no per-line await and
no per-connection task. A slow or idle client costs only its framer state. When
the queue is full the connection stops reading (`pause_reading`) until the
queue drains, so the kernel's TCP window pushes back on the sender.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import deque
from typing import TYPE_CHECKING, cast

from logcaster.log import log_event
from logcaster.pipeline.batch import StreamMark, Texts, text_list
from logcaster.security.guard import Peer
from logcaster.security.roles import ANONYMOUS, Principal
from logcaster.sources.stream_gate import StreamGate

if TYPE_CHECKING:
    from logcaster.sources.stream_listener import StreamIngestServer

logger = logging.getLogger("logcaster.sources.tcp")

ACK_HANDSHAKE = b"#LOGCASTER ACK 1\n"
ACK_ACCEPTED = b"#OK ACK 1\n"
# The handshake naming a stream: `#LOGCASTER ACK 1 SESSION <32 hex> SEQ <line>`.
ACK_SESSION = b"#LOGCASTER ACK 1 SESSION "
_SESSION_LINE = re.compile(rb"#LOGCASTER ACK 1 SESSION ([0-9a-f]{32}) SEQ (0|[1-9][0-9]{0,17})\r?")
_SESSION_MAX = len(ACK_SESSION) + 32 + 5 + 18 + 2  # the longest such line
# After a last answer (NACK, unauthorized): input read and dropped before closing,
# at most this much, this long, so the client reads the answer rather than a reset.
DISCARD_MAX_BYTES = 16 * 1024 * 1024
DISCARD_WITHIN_S = 2.0


class _Acks:
    """Acknowledged delivery on one connection (docs/acknowledged-delivery.md).

    `lines` counts the newlines read. The lines whose events have ids are all
    but those of the event the framer holds back; `pending` maps the last id
    of this connection at each step to the lines covered then, so when the
    durable watermark passes that id, those lines are confirmed with
    `ACK <lines>`. Entries are added at most once per read and removed as the
    watermark moves, so the deque spans only reads not yet durable.
    """

    __slots__ = ("acked", "covered", "last_id", "lines", "pending")

    def __init__(self) -> None:
        self.lines = 0
        self.covered = 0  # lines whose events were submitted
        self.last_id = 0  # the last id submitted from this connection
        self.acked = 0
        self.pending: deque[tuple[int, int]] = deque()  # (last_id, covered)


class StreamConnection(StreamGate, asyncio.Protocol):
    """One ingest connection. `make_framer` decides the framing (lines, syslog, ...)."""

    def __init__(self, server: StreamIngestServer) -> None:
        self._server = server
        self._framer = server.make_framer()
        self._transport: asyncio.Transport | None = None
        self._source = server.name
        self._paused = False
        self._truncated = 0
        self._closed = False
        # While True the first bytes may still be the ack handshake (kept in _head).
        self._may_handshake = server.acks
        self._head = b""
        self._acks: _Acks | None = None
        # A named stream (the session handshake): its id and the number of the next
        # line handed out in an event. Counted from the texts, not from the newlines
        # read: a line cut at max_line_bytes is handed out before its newline comes.
        self._session: StreamMark | None = None
        self._refused_at: int | None = None  # lines accepted before a refusal (reject)
        self._deferred: bytes | None = None  # a read waiting for its turn (IntakeBudget)
        self._reading_held = False  # pause_reading is in effect (full queue or turn budget)
        self._discard_left: int | None = None  # after a NACK: input still read and dropped
        self.last_data = time.monotonic()
        self._opened_at = self.last_data  # the protocol is made as the connection opens
        self._active_at = self.last_data  # the last sign of life, for ingest.idle_timeout
        # When the line the stream stopped inside began (None: between lines), for
        # ingest.line_timeout: trickled bytes are a sign of life, not of progress.
        self._partial_since: float | None = None
        self._ip = ""
        self._peer = Peer("", "local")
        # Authentication (auth.enabled): None until the token or certificate is
        # accepted; `_auth_head` holds the start of the stream meanwhile (bounded).
        self._principal: Principal | None = None if server.guard.required else ANONYMOUS
        self._auth_head: bytes | None = b"" if self._principal is None else None
        self._checking = False  # the AUTH line's token is being checked
        self._auth_checked = self._opened_at  # its token last checked again (revocation)
        self._limited = False  # held back by a rate limit (rate_limit.*)
        self._tls = server.ssl is not None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        server = self._server
        peer = self._transport.get_extra_info("peername")
        self._ip = str(peer[0]) if isinstance(peer, tuple) else ""
        if not server.limits.admit(self._ip, len(server.connections)):
            self._closed = True  # never admitted: nothing to flush or release
            self._transport.abort()
            return
        if isinstance(peer, tuple):
            self._source = f"{server.name}:{peer[0]}:{peer[1]}"
        self._peer = Peer.of(peer)
        server.connections.add(self)
        if self._principal is None:
            # A verified client certificate mapped to a role (auth.certificate_roles)
            # authenticates; without one, TCP ingest waits for its AUTH line and
            # syslog (which takes no token) is refused.
            subject = server.peer_subject(self._transport)
            if not server.tokens or server.guard.maps(subject):
                self._admit(server.guard.certificate(subject, self._peer))
        log_event(logger, logging.DEBUG, "connection_opened", peer=self._source)

    def data_received(self, data: bytes) -> None:
        self.last_data = self._active_at = time.monotonic()
        if self._refused_at is not None:
            # Refused: what follows is resent on a new connection. Once the NACK is
            # out, read it only to close cleanly (`_send_nack`).
            if self._discard_left is not None:
                self._discard_left -= len(data)
                if self._discard_left <= 0 and self._transport is not None:
                    self._transport.close()
            return
        if self._deferred is not None:
            self._deferred += data  # read in the same wake-up as the deferred one
            return
        intake = self._server.pipeline.intake
        if not intake.take():
            # This turn's budget is spent (pipeline/turns.py): stop reading, and
            # process the read on a later turn, so other work, queries above all,
            # gets the loop in between.
            self._deferred = data
            self._update_reading()
            intake.defer(self._take_deferred)
            return
        intake.run(self._process, data)

    def _take_deferred(self) -> None:
        """Our turn came: process the read kept aside, then read again."""
        data, self._deferred = self._deferred, None
        if data is None or self._closed:
            return  # `finish` processed it already
        self._server.pipeline.intake.run(self._process, data)
        self._update_reading()

    def _update_reading(self) -> None:
        """Read while neither a full queue nor the turn budget holds this connection back."""
        transport = self._transport
        if transport is None or transport.is_closing() or self._refused_at is not None:
            return
        hold = self._paused or self._deferred is not None or self._limited
        hold = hold or self._checking
        if hold != self._reading_held:
            self._reading_held = hold
            if hold:
                transport.pause_reading()
            else:
                transport.resume_reading()

    def _process(self, data: bytes) -> None:
        if self._refused_at is not None:
            return
        if self._auth_head is not None:
            data = self._authenticate(data)
            if not data:
                return
        if self._may_handshake:
            data = self._handshake(data)
            if not data:
                self._note_partial(False)
                return  # the handshake so far, or all of it
        texts = self._framer.feed_read(data)
        self._note_partial(bool(texts) or b"\n" in data)
        if texts:
            self._submit(texts)
            if self._refused_at is not None:
                return
        if self._acks is not None:
            self._acks.lines += data.count(b"\n")
            self._record_progress()

    def _note_partial(self, ended_one: bool) -> None:
        """After a read: is the stream inside a line, and since when (a read that
        ended a line and began another starts the clock again)."""
        if not (self._framer.partial or self._head):
            self._partial_since = None
        elif ended_one or self._partial_since is None:
            self._partial_since = self.last_data

    def _handshake(self, data: bytes) -> bytes:
        """Strip the ack handshake if the stream starts with it; return the rest.

        A line that only looks like one (a bad session id) is an ordinary line."""
        head = self._head + data
        partial = len(head) < len(ACK_HANDSHAKE) and ACK_HANDSHAKE.startswith(head)
        if partial or (
            ACK_SESSION.startswith(head[: len(ACK_SESSION)])
            and b"\n" not in head
            and len(head) < _SESSION_MAX
        ):
            self._head = head  # maybe the handshake, in pieces: wait for more
            return b""
        self._may_handshake = False
        self._head = b""
        if head.startswith(ACK_SESSION):
            line, _, rest = head.partition(b"\n")
            m = _SESSION_LINE.fullmatch(line)
            if m is None:
                return head
            self._session = StreamMark(m[1].decode(), int(m[2]))
            self._start_acks()
            return rest
        if not head.startswith(ACK_HANDSHAKE):
            return head
        self._start_acks()
        return head[len(ACK_HANDSHAKE) :]

    def _start_acks(self) -> None:
        self._acks = _Acks()
        pipeline = self._server.pipeline
        pipeline.on_durable(self._on_durable)
        if self._transport is not None:
            self._transport.write(ACK_ACCEPTED)

    def _submit(self, texts: Texts) -> None:
        if self._server.guard.limits.ingest_on:
            self._limit(texts)
        framer = self._framer
        if framer.truncated != self._truncated:
            self._server.stats.truncate(self._server.name, framer.truncated - self._truncated)
            self._truncated = framer.truncated
        pipeline = self._server.pipeline
        session = self._session
        if session is not None and texts:
            lines = b"\n".join(text_list(texts)).count(b"\n") + 1  # every text's lines
            self._session = StreamMark(session.session, session.seq + lines)
        offered = pipeline.offer(texts, self._source, session)
        pause = offered.pause
        if offered.refused and self._acks is not None:
            self._refuse()
            return
        if self._acks is not None:
            self._acks.last_id = pipeline.last_id
        if pause and not self._paused:
            transport = self._transport
            if transport is not None and not transport.is_closing():
                self._paused = True
                self._update_reading()
                self._server.pipeline.queue.on_space(self._resume)

    def _refuse(self) -> None:
        """The `reject` policy refused a read: tell an ack client `NACK <n>`.

        `n` counts the lines accepted before (their acks come first, once
        durable); everything after, including an event held for continuation
        lines, is forgotten here and resent by the client on a new connection,
        after its backoff. Then the connection closes.
        """
        acks = self._acks
        assert acks is not None
        self._refused_at = acks.covered
        self._framer = self._server.make_framer()  # nothing held is submitted later
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.pause_reading()
        if not acks.pending:
            self._send_nack()

    def _send_nack(self) -> None:
        self._answer_and_close(b"NACK %d\n" % (self._refused_at or 0))

    def _answer_and_close(self, answer: bytes) -> None:
        """Write a last answer (`NACK <n>`, `ERROR: unauthorized`), half-close, and
        drop what the client still sends until its EOF (bounded in bytes and time):
        closing with unread input would reset the connection, and the client could
        lose the answer. (TLS cannot half-close: the client, having read it, closes
        first.)"""
        transport = self._transport
        if transport is None or transport.is_closing() or self._discard_left is not None:
            return
        transport.write(answer)
        if transport.can_write_eof():
            transport.write_eof()
        self._discard_left = DISCARD_MAX_BYTES
        transport.resume_reading()
        asyncio.get_running_loop().call_later(DISCARD_WITHIN_S, transport.close)

    def _record_progress(self) -> None:
        """Note which lines are now covered by submitted events (ack mode only)."""
        acks = self._acks
        assert acks is not None
        covered = acks.lines - self._framer.held_lines
        if covered <= acks.covered:
            return
        acks.covered = covered
        acks.pending.append((acks.last_id, covered))
        durable = self._server.pipeline.durable_id
        if acks.last_id <= durable:
            self._on_durable(durable)

    def _on_durable(self, durable_id: int) -> None:
        """The watermark moved: confirm the lines whose events are all durable now."""
        acks = self._acks
        if acks is None:
            return
        pending = acks.pending
        covered = 0
        while pending and pending[0][0] <= durable_id:
            covered = pending.popleft()[1]
        if covered > acks.acked:
            acks.acked = covered
            self._active_at = time.monotonic()  # idle from the last ack on, not before
            transport = self._transport
            if transport is not None and not transport.is_closing():
                transport.write(b"ACK %d\n" % covered)
        if self._refused_at is not None and not pending:
            self._send_nack()
        if self._closed and not pending:
            self._release()  # the client half-closed and has every ack now

    def _resume(self) -> None:
        self._paused = False
        self._active_at = time.monotonic()  # held back by the server: that was not idling
        if self._partial_since is not None:
            self._partial_since = self._active_at  # nor was that trickling
        self._update_reading()

    def close_if_idle(self, now: float, timeout: float) -> None:
        """Close the connection after `timeout` s without data (ingest.idle_timeout).

        Not while the server is the one waiting: reading paused for a full queue
        or the turn budget, or acks outstanding (the client waits for them, and
        the idle time counts from the last one); nor after a NACK (closing anyway).
        """
        if self._paused or self._deferred is not None or self._refused_at is not None:
            return
        if self._limited or self._checking:
            return
        acks = self._acks
        if acks is not None and acks.lines > acks.acked:
            return  # lines read, not acked yet (held by the framer or not durable)
        transport = self._transport
        if now - self._active_at >= timeout and transport is not None:
            self._server.limits.closed_idle(self._ip)
            transport.close()  # connection_lost flushes what the framer holds

    def close_if_slow(self, now: float, timeout: float) -> None:
        """Close the connection when one line has taken `timeout` s (ingest.line_timeout),
        unless the server is the one holding it back. What it sent is kept: closing
        flushes the framer, the unfinished line included."""
        since = self._partial_since
        if since is None or self._paused or self._deferred is not None:
            return
        transport = self._transport
        if now - since >= timeout and transport is not None and self._refused_at is None:
            self._partial_since = None
            self._server.limits.closed_slow(self._ip)
            transport.close()

    def flush_idle(self, now: float, idle: float) -> None:
        """Release an event held for possible continuation lines once the sender is idle."""
        if self._framer.holding and now - self.last_data >= idle:
            texts = self._framer.flush_held()
            if texts:
                self._submit(texts)
                if self._acks is not None:
                    self._record_progress()

    def eof_received(self) -> bool:
        """The client half-closed. Plain: close our side too (connection_lost flushes).

        Ack mode: release everything held at once and keep the socket open until
        the last ack is written, so a client ending its stream need not wait for
        the idle flush or resend anything.
        """
        if self._acks is None or self._discard_left is not None or self._tls:
            # After a NACK: the client read it and ended, close. TLS: the peer's
            # close_notify ends both directions (connection_lost flushes).
            return False
        self.finish(linger=True)
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.finish()
        self._release()

    def finish(self, *, linger: bool = False) -> None:
        """End of stream (or shutdown): submit everything the framer still holds.

        With `linger` (server shutdown) an ack connection stays open, not reading,
        so the acks of its last lines can still be sent once they are durable;
        `StreamIngestServer.close` closes it.
        """
        if self._closed:
            return
        if self._deferred is not None:
            data, self._deferred = self._deferred, None
            self._process(data)  # read before the end: it is part of the stream
        self._closed = True
        if self._principal is None:
            self._auth_head = None  # never accepted: nothing of it is taken
            self._refused_at = 0
        framer = self._framer
        texts = framer.feed(self._head) if self._head else []
        texts.extend(framer.close())
        if texts:
            self._submit(texts)
        if self._acks is not None:
            # Acks count newlines: a last line without one is stored but never confirmed.
            self._record_progress()
        server = self._server
        server.connections.discard(self)
        log_event(
            logger,
            logging.DEBUG,
            "connection_closed",
            peer=self._source,
            seconds=round(time.monotonic() - self._opened_at, 3),
        )
        server.limits.release(self._ip)
        transport = self._transport
        acks = self._acks
        if (
            linger
            and acks is not None
            and acks.pending
            and transport
            and not transport.is_closing()
        ):
            with contextlib.suppress(RuntimeError):  # reading already stopped at EOF
                transport.pause_reading()
            server.lingering.add(self)
            return
        self._release()

    def _release(self) -> None:
        """Close the socket and stop listening to the watermark."""
        self._server.lingering.discard(self)
        if self._acks is not None:
            self._server.pipeline.remove_durable_listener(self._on_durable)
        if self._transport is not None:
            self._transport.close()
