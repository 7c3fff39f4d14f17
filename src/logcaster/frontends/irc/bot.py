"""LogBot: the commands people say in a channel (or to LogBot directly).

`!query` takes QUERY's syntax and shows at most `irc.query_rows` rows (up to
50 with `limit=`), saying how many more there are; `!show ID` sends the
whole event to the asker as NOTICEs; `!stats`, `!help`; `!logfilter` and
`!logstream` change what a channel streams, for everyone in it, until
changed again: in a channel a client created, its operators may; in a log
channel, principals that may RELOAD (operators, admins; everyone with
authentication off).

Searches run in the query threads like every other front end's, under the
same limits, per-client query rate and audit; one at a time per client.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import logging
import time
import weakref
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from logcaster.event import Event
from logcaster.exceptions import DecryptRefused, QueryBusy, QueryLimitError, QuerySyntaxError
from logcaster.frontends.irc.channels import RESERVED, Channel, fold
from logcaster.frontends.irc.format import body_lines, event_line, fit
from logcaster.frontends.irc.message import MAX_LINE_BYTES, build
from logcaster.pipeline.broker import TooManySubscribers
from logcaster.query.parser import UnknownCommand, parse_command, parse_params
from logcaster.security.roles import Permission

if TYPE_CHECKING:
    from logcaster.frontends.irc.connection import IrcClient
    from logcaster.frontends.irc.server import IrcServer

logger = logging.getLogger("logcaster.irc")

MAX_ROWS = 50  # `!query … limit=N` in a channel: at most this
# The commands a client's budget (irc.commands_per_s, irc.commands_burst) counts.
BOT_VERBS = frozenset({"help", "stats", "query", "show", "logfilter", "logstream"})
STATS_SHOWN = (
    "Total", "Current", "Dropped", "Delivered", "QueueEvents", "Clients",
    "TailSubscribers", "IrcClients", "StoreLag", "Uptime",
)  # fmt: skip
HELP = (
    "!query key=value ...   search, QUERY's syntax: level=ERROR service=NAME keyword=WORD "
    "regex=RE request_id=ID time_from=T ...; {rows} rows, limit=N for up to 50",
    "!show ID               the whole event ID (a stack trace), to you as NOTICEs",
    "!stats                 the server's counters",
    "!logfilter key=value ...   narrow what this channel streams (level= service= "
    "keyword= regex= field=value); !logfilter off: back to the channel's own",
    "!logstream on [key=value ...] | off   stream matching events into this channel, or stop",
    "Log channels: " + " ".join(RESERVED),
)


class LogBot:
    def __init__(self, server: IrcServer) -> None:
        self.server = server
        self._busy: set[IrcClient] = set()  # clients with a query running
        # Per client: (commands it may still give, when last counted, told to slow down)
        self._budget: weakref.WeakKeyDictionary[IrcClient, list[float]] = (
            weakref.WeakKeyDictionary()
        )

    def command(self, client: IrcClient, channel: Channel | None, text: str) -> None:
        if text.startswith("\x01"):
            return  # CTCP (VERSION, PING, ACTION): not a command, and never answered
        word, _, rest = text.strip().partition(" ")
        verb = word.lstrip("!").lower()
        rest = rest.strip()
        if verb in BOT_VERBS and not self._allowed(client):
            return
        if verb == "help":
            for line in HELP:
                self._say(client, channel, line.format(rows=self.server.config.query_rows))
        elif verb == "stats":
            stats = self.server.stats()
            shown = [f"{k}={round(stats[k]):,}" for k in STATS_SHOWN if k in stats]
            self._say(client, channel, "STATS: " + " ".join(shown))
        elif verb in ("query", "show"):
            if client in self._busy:
                self._say(client, channel, "busy: your last query is still running")
                return
            wait = self.server.guard.limits.query(
                (client.peer.address, client.principal.name), "irc"
            )
            if wait > 0:
                self._say(client, channel, f"rate limited: try again in {wait:.1f} s")
                return
            self._busy.add(client)
            work = (
                self._query(client, channel, rest)
                if verb == "query"
                else self._show(client, channel, rest)
            )
            task = asyncio.get_running_loop().create_task(self._guarded(client, channel, work))
            task.add_done_callback(lambda _: self._busy.discard(client))
        elif verb == "logfilter":
            self._logfilter(client, channel, rest)
        elif verb == "logstream":
            self._logstream(client, channel, rest)
        elif channel is None:
            self._say(client, None, f"unknown command {word[:40]!r}: say !help")
        # In a channel, other `!words` are chat, left alone.

    def _allowed(self, client: IrcClient) -> bool:
        """Spend one of the client's commands; past its budget, one private notice."""
        now = time.monotonic()
        rate, burst = self.server.config.commands_per_s, float(self.server.config.commands_burst)
        budget = self._budget.setdefault(client, [burst, now, 0.0])
        budget[0] = min(burst, budget[0] + (now - budget[1]) * rate)
        budget[1] = now
        if budget[0] >= 1:
            budget[0] -= 1
            budget[2] = 0.0
            return True
        if not budget[2]:
            budget[2] = 1.0
            self._notice(
                client, f"LogBot takes {rate:g} commands a second from you (irc.commands_per_s)"
            )
        return False

    async def _guarded(
        self, client: IrcClient, channel: Channel | None, work: Coroutine[Any, Any, None]
    ) -> None:
        """A search's task: an unexpected failure is logged and said, never lost."""
        try:
            await work
        except Exception:
            logger.exception("irc_bot_failed", extra={"fields": {"nick": client.nick}})
            self._say(client, channel, "internal error while answering (see the server log)")

    # --- searches ---------------------------------------------------------------------

    async def _query(self, client: IrcClient, channel: Channel | None, rest: str) -> None:
        server = self.server
        config = server.queries.config
        try:
            command = parse_command("QUERY " + rest, config)
            query = command.query
            assert query is not None
            asked = any(k.lower() == "limit" for k, _ in parse_params(rest))
            rows = min(query.limit, MAX_ROWS) if asked else server.config.query_rows
            query = dataclasses.replace(query, limit=rows)
            if not server.guard.allow(
                client.principal, Permission.READ_LOGS, "query", client.peer, detail=rest[:500]
            ):
                self._say(client, channel, "error: unauthorized")
                return
            answer = await server.queries.run(query, client.principal)
        except (QuerySyntaxError, UnknownCommand) as exc:
            self._say(client, channel, f"error: Invalid query syntax: {exc}")
            return
        except (QueryLimitError, QueryBusy, DecryptRefused) as exc:
            self._say(client, channel, f"error: {exc}")
            return
        found = f"{answer.total}{'+' if answer.capped else ''}"
        self._say(client, channel, f"FOUND: {found} matches")
        for ev in answer.rows:
            server.recent.add(ev)
            self._say(client, channel, event_line(ev, server.config.colors, 400))
        more = answer.total - len(answer.rows)
        if more > 0:
            hint = (
                "add limit=N (up to 50)"
                if len(answer.rows) < MAX_ROWS
                else "use QUERY or the HTTP API"
            )
            self._say(client, channel, f"... {more:,}{'+' if answer.capped else ''} more: {hint}")

    async def _show(self, client: IrcClient, channel: Channel | None, rest: str) -> None:
        server = self.server
        word = rest.split()[0] if rest.split() else ""
        if not (word.lstrip("#").isascii() and word.lstrip("#").isdigit()):
            self._say(client, channel, "usage: !show ID (the number a log line ends with)")
            return
        event_id = int(word.lstrip("#"))
        if not server.guard.allow(
            client.principal, Permission.READ_LOGS, "query", client.peer, detail=f"show {event_id}"
        ):
            self._say(client, channel, "error: unauthorized")
            return
        ev = server.recent.get(event_id) or self._from_memory(event_id)
        if ev is None:
            self._say(client, channel, f"event {event_id} is not in memory any more")
            return
        room = MAX_LINE_BYTES - len(f":{server.bot_mask} NOTICE {client.nick} :\r\n".encode())
        lines, left = body_lines(ev, room, server.config.show_lines)
        line = event_line(ev, server.config.colors, room - 20)
        self._notice(client, fit(f"event {ev.id}: {line}", room))
        for line in lines:
            self._notice(client, line)
        if left:
            self._notice(client, f"... {left} more lines: GET /api/v1/query shows them all")

    def _from_memory(self, event_id: int) -> Event | None:
        memory = self.server.queries.memory
        batches, skip = memory.snapshot()
        if not batches or event_id <= memory.hidden_through:
            return None
        index = bisect.bisect_right([b.first_id for b in batches], event_id) - 1
        if index < 0 or event_id > batches[index].last_id:
            return None
        batch = batches[index]
        offset = event_id - batch.first_id
        if index == 0 and offset < skip:
            return None
        return batch.events_between(offset, offset + 1, 0)[0]

    # --- channel streams --------------------------------------------------------------

    def _may_steer(self, client: IrcClient, channel: Channel | None) -> bool:
        if channel is None:
            self._say(client, None, "say that in the channel it is for")
            return False
        if channel.reserved:
            allowed = client.principal.may(Permission.RELOAD)
        else:
            allowed = bool(channel.members.get(client))
        if not allowed:
            who = "an operator or admin" if channel.reserved else "a channel operator"
            self._say(client, channel, f"only {who} may change what {channel.name} streams")
        return allowed

    def _logfilter(self, client: IrcClient, channel: Channel | None, rest: str) -> None:
        if not self._may_steer(client, channel):
            return
        assert channel is not None
        if channel.filter is None:
            self._say(client, channel, "this channel does not stream: !logstream on [filter]")
            return
        try:
            params = [] if rest.lower() in ("", "off") else parse_params(rest)
        except QuerySyntaxError as exc:
            self._say(client, channel, f"error: {exc}")
            return
        self._set(client, channel, params)

    def _logstream(self, client: IrcClient, channel: Channel | None, rest: str) -> None:
        if not self._may_steer(client, channel):
            return
        assert channel is not None
        server = self.server
        word, _, filters = rest.partition(" ")
        if word.lower() == "off":
            if channel.filter is not None:
                server.set_filter(channel, None)
                server.to_channel(channel, build(server.bot_mask, "PART", channel.name, "off"))
            self._say(client, channel, f"{channel.name} no longer streams logs")
        elif word.lower() == "on":
            try:
                params = parse_params(filters) if filters.strip() else []
            except QuerySyntaxError as exc:
                self._say(client, channel, f"error: {exc}")
                return
            self._set(client, channel, params)
        else:
            self._say(client, channel, "usage: !logstream on [key=value ...] | off")

    def _set(self, client: IrcClient, channel: Channel, params: list[tuple[str, str]]) -> bool:
        """Make `channel` stream `params` (a log channel keeps its levels)."""
        base = RESERVED.get(fold(channel.name)) if channel.reserved else None
        if base is not None:
            own = [v for k, v in params if k.lower() == "level"]
            if own and not set(own[-1].upper().split(",")) <= set(base.split(",")):
                self._say(client, channel, f"{channel.name} streams level={base} only")
                return False
            if not own:
                params = [("level", base), *params]
        joining = channel.filter is None
        try:
            self.server.set_filter(channel, params)
        except (QuerySyntaxError, QueryLimitError) as exc:
            self._say(client, channel, f"error: {exc}")
            return False
        except TooManySubscribers as exc:
            self._say(client, channel, f"error: too many live streams ({exc})")
            return False
        if joining:  # LogBot comes in to stream
            self.server.to_channel(channel, build(self.server.bot_mask, "JOIN", channel.name))
        shown = " ".join(f"{k}={v}" for k, v in params) or "every event"
        self._say(client, channel, f"{channel.name} now streams: {shown}")
        return True

    # --- replies ----------------------------------------------------------------------

    def _say(self, client: IrcClient, channel: Channel | None, text: str) -> None:
        """A PRIVMSG to the channel (every member) or, asked in private, to the asker."""
        server = self.server
        target = channel.name if channel is not None else client.nick
        room = MAX_LINE_BYTES - len(f":{server.bot_mask} PRIVMSG {target} :\r\n".encode())
        line = build(server.bot_mask, "PRIVMSG", target, fit(text, room))
        if channel is None:
            client.send(line)
        else:
            server.to_channel(channel, line)

    def _notice(self, client: IrcClient, text: str) -> None:
        client.send(build(self.server.bot_mask, "NOTICE", client.nick, text))
