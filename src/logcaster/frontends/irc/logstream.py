"""A channel's live log stream: one broker subscription, fanned out to its members.

The stream subscribes to the pipeline's broker (pipeline/broker.py) with the
channel's filter and a rate cap of `irc.channel_rate` events a second: no
channel streams more than a person reads, so the server neither parses nor formats the rest (a
reader of every event is capped before parsing; tail_rate.py). Each kept
event is formatted once (format.py) and appended to every member's log queue
(sendq.py): a slow member skips lines alone, never holding the stream up.

What the cap or the broker left out is counted and told to the channel by
LogBot, at most once per `SKIP_NOTICE_S`, so a busy stream says how much it
is not showing without flooding the channel with notices.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

from logcaster.event import Event
from logcaster.frontends.irc.format import event_line, fit
from logcaster.frontends.irc.message import MAX_LINE_BYTES, build
from logcaster.pipeline.broker import Subscription
from logcaster.pipeline.tail_items import Ended, Skipped
from logcaster.query.live import live_filter

if TYPE_CHECKING:
    from logcaster.frontends.irc.channels import Channel
    from logcaster.frontends.irc.server import IrcServer

SKIP_NOTICE_S = 10.0
RECENT_EVENTS = 5000  # events shown in channels kept for `!show` (by id)


class Recent:
    """The events the channels showed lately, by id, for `!show` (bounded)."""

    def __init__(self, most: int = RECENT_EVENTS) -> None:
        self._most = most
        self._events: OrderedDict[int, Event] = OrderedDict()

    def add(self, ev: Event) -> None:
        self._events[ev.id] = ev
        if len(self._events) > self._most:
            self._events.popitem(last=False)

    def get(self, event_id: int) -> Event | None:
        return self._events.get(event_id)


class LogStream:
    """`channel`'s stream of events matching `params` (the query syntax)."""

    def __init__(self, server: IrcServer, channel: Channel, params: list[tuple[str, str]]) -> None:
        self.server = server
        self.channel = channel
        self.params = params
        # Raises the parser's QuerySyntaxError / QueryLimitError for a bad filter.
        self.filter = live_filter(params, server.queries.config)
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._unsaid = 0  # events left out since the last notice
        self._said_at = time.monotonic()
        self._head = (
            f":{server.bot_mask} PRIVMSG {channel.name} :".encode(),
            len(f":{server.bot_mask} PRIVMSG {channel.name} :\r\n".encode()),
        )

    def start(self) -> None:
        """Subscribe (TooManySubscribers past the broker's bound) and run."""
        rate = max(1, int(self.server.config.channel_rate))
        self._sub = self.server.broker.subscribe(self.filter, max_rate=rate)
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._sub is not None:
            self.server.broker.unsubscribe(self._sub, "irc channel stream stopped")
            self._sub = None
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        sub = self._sub
        assert sub is not None
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                items = await sub.get()
                lines: list[bytes] = []
                for item in items:
                    if isinstance(item, Event):
                        lines.append(self._line(item))
                    elif isinstance(item, Skipped):
                        self._unsaid += item.count
                        skipped = self.server.stream_skipped
                        skipped[item.reason] = skipped.get(item.reason, 0) + item.count
                    elif isinstance(item, Ended):
                        return
                if lines:
                    for member in list(self.channel.members):
                        log = member.output.log
                        for line in lines:
                            log(line)
                self.tell_skips()

    def _line(self, ev: Event) -> bytes:
        self.server.recent.add(ev)
        head, overhead = self._head
        room = MAX_LINE_BYTES - overhead
        text = fit(event_line(ev, self.server.config.colors, room), room)
        return head + text.encode("utf-8", "replace") + b"\r\n"

    def tell_skips(self) -> None:
        """Tell the channel what was left out, at most every SKIP_NOTICE_S (called
        as items come, and by the server's ticker, so a burst's count is told
        even when nothing follows it)."""
        now = time.monotonic()
        if not self._unsaid:
            self._said_at = now  # a quiet spell: the next notice counts from here
            return
        if now - self._said_at < SKIP_NOTICE_S:
            return
        rate = self.server.config.channel_rate
        text = (
            f"{self._unsaid:,} events not shown in the last {now - self._said_at:.0f} s "
            f"(this channel streams at most {rate:g} a second): narrow it with !logfilter"
        )
        line = build(self.server.bot_mask, "NOTICE", self.channel.name, text)
        for member in list(self.channel.members):
            member.output.log(line)
        self._unsaid = 0
        self._said_at = now
