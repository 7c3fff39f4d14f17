"""One IRC client's outgoing lines: bounded, throttled, never in ingest's way.

Two queues. Replies (numerics, chat, LogBot's answers) are never skipped: a
client that lets more than `irc.max_replies` of them pile up is cut ("SendQ
exceeded", as ircds say). Log lines from the channels' streams are bounded at
`irc.sendq_lines`; past it they are skipped for this client alone and counted,
and once its queue has drained to a quarter the client gets one NOTICE saying
how many it missed. Publishing a log line is one append: the channel's stream
never waits for a client.

The writer sends log lines at most `irc.rate` a second (with `irc.burst` saved
up), several per write; replies go first and as fast as the client reads
them, so a client that reads is never cut for what others made the server
send it (chat, LogBot's answers in its channels). While the socket's buffer is
full (the client does not read) it waits; `stuck_for` tells the server's
ticker how long, and past `irc.stuck_timeout` the client is cut.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

# Each write waits for at least this share of a second's lines (or what is
# queued, if less): a client costs at most ~10 wake-ups a second.
WRITE_SHARE = 0.1
CLOSING_REPLIES = 20  # replies still written when a client is closed (the reason why)


class Output:
    """A client's queues and its writer (run as a task by the connection)."""

    def __init__(
        self,
        write: Callable[[bytes], None],
        rate: float,
        burst: int,
        max_logs: int,
        max_replies: int,
        skipped_notice: Callable[[int], bytes],
    ) -> None:
        self._write = write
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._last = time.monotonic()
        self._max_logs = max_logs
        self._max_replies = max_replies
        self._notice = skipped_notice
        self._replies: deque[bytes] = deque()
        self._logs: deque[bytes] = deque()
        self._wake = asyncio.Event()
        self._blocked_at: float | None = None  # the socket's buffer is full since
        self.unreported = 0  # log lines skipped, not yet told in a NOTICE
        self.skipped = 0  # log lines skipped, all told
        self.sent = 0  # lines written
        self.overflowed = False  # more replies waiting than max_replies
        self.closed = False

    def reply(self, line: bytes) -> None:
        """Queue a line that must arrive (protocol replies, chat, answers)."""
        if self.closed:
            return
        if len(self._replies) >= self._max_replies:
            self.overflowed = True  # the server cuts the client on its next tick
            return
        self._replies.append(line)
        self._wake.set()

    def log(self, line: bytes) -> bool:
        """Queue a log channel's line; False when skipped (the queue is full)."""
        if self.closed:
            return False
        if len(self._logs) >= self._max_logs:
            self.unreported += 1
            self.skipped += 1
            return False
        self._logs.append(line)
        self._wake.set()
        return True

    def blocked(self, yes: bool) -> None:
        """The transport's flow control: its buffer is over (True) or under its mark."""
        if yes:
            if self._blocked_at is None:
                self._blocked_at = time.monotonic()
        else:
            self._blocked_at = None
            self._wake.set()

    def stuck_for(self, now: float) -> float:
        """Seconds the client has not read while there was something to send."""
        return 0.0 if self._blocked_at is None else now - self._blocked_at

    @property
    def queued(self) -> int:
        return len(self._replies) + len(self._logs)

    def close(self) -> list[bytes]:
        """Stop; the replies not yet written are returned (a few, for a last write)."""
        self.closed = True
        replies = list(self._replies)[:CLOSING_REPLIES]
        self._replies.clear()
        self._logs.clear()
        self._wake.set()
        return replies

    async def run(self) -> None:
        """Write until closed: replies first, at the rate, while the socket takes it."""
        while not self.closed:
            if self._replies and self._blocked_at is None:
                self._send_replies()
                continue
            waiting = len(self._logs)
            if not waiting and self.unreported:
                # Drained: the count of what was skipped goes now, not with the
                # next line (which may be long in coming).
                self._replies.append(self._notice(self.unreported))
                self.unreported = 0
                continue
            if not waiting or self._blocked_at is not None:
                self._wake.clear()
                await self._wake.wait()
                continue
            want = min(waiting, max(1.0, self._rate * WRITE_SHARE), self._burst)
            tokens = self._refill()
            if tokens < want:
                await asyncio.sleep((want - tokens) / self._rate)
                continue
            self._send(int(tokens))

    def _refill(self) -> float:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        return self._tokens

    def _logs_drained(self) -> bool:
        return len(self._logs) <= self._max_logs // 4

    def _send_replies(self) -> None:
        out = list(self._replies)
        self._replies.clear()
        self.sent += len(out)
        self._write(b"".join(out))

    def _send(self, most: int) -> None:
        out: list[bytes] = []
        logs = self._logs
        while logs and len(out) < most:
            out.append(logs.popleft())
        if self.unreported and self._logs_drained() and len(out) < most:
            out.append(self._notice(self.unreported))
            self.unreported = 0
        self._tokens -= len(out)
        self.sent += len(out)
        self._write(b"".join(out))
