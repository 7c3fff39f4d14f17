"""The IRC server (SPEC §7): a component with clients, nicks and channels.

Who owns what: the server holds the nick table, the channel table and the
set of connections; a client (connection.py) holds its own state and output;
a log channel's stream (logstream.py) is the channel's, started and stopped
by the server. Commands are handled by the modules in this package, chosen
from `HANDLERS`; everything runs on the event loop, and nothing a client does
can block another: output goes through each client's bounded queue.

A ticker (once a second) pings idle clients and cuts those that do not
answer, cuts clients stuck not reading, or over their reply bound, or not
registered in time, and clients whose token was revoked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from logcaster.component import Endpoint, listening, server_endpoint
from logcaster.frontends.irc import commands, info, registration, serverinfo
from logcaster.frontends.irc import numerics as N
from logcaster.frontends.irc.bot import LogBot
from logcaster.frontends.irc.channels import BOT_NICK, RESERVED, Channel, Channels, fold
from logcaster.frontends.irc.connection import IrcClient
from logcaster.frontends.irc.logstream import LogStream, Recent
from logcaster.frontends.irc.message import Message, build
from logcaster.frontends.lineproto import QueryService
from logcaster.log import log_event
from logcaster.metrics.registry import Metric, Readings
from logcaster.options import IrcConfig
from logcaster.pipeline.broker import Broker
from logcaster.query.live import live_filter
from logcaster.security.guard import Guard
from logcaster.security.tls import HANDSHAKE_TIMEOUT
from logcaster.sources.connections import ConnectionLimits

logger = logging.getLogger("logcaster.irc")

TICK_S = 1.0

IRC_CLIENTS = Metric("irc_clients", "gauge", "Connected IRC clients", stats="IrcClients")
IRC_CHANNELS = Metric("irc_channels", "gauge", "IRC channels, the log channels included")
IRC_LINES = Metric(
    "irc_lines_sent", "counter", "Lines written to IRC clients", stats="IrcLinesSent"
)
IRC_SKIPPED = Metric(
    "irc_skipped_lines",
    "counter",
    "Events not sent to IRC clients: over a channel's rate (rate), its stream behind "
    "(slow), or a client's queue full (client)",
    labels=("reason",),
    stats="IrcSkipped",
)
IRC_CUT = Metric(
    "irc_disconnects",
    "counter",
    "IRC clients the server disconnected, by reason",
    labels=("reason",),
)

Handler = Callable[["IrcServer", IrcClient, Message], None]


class IrcServer:
    """The IRC listener and its state."""

    option = "irc.port"

    def __init__(
        self,
        config: IrcConfig,
        broker: Broker,
        queries: QueryService,
        guard: Guard,
        stats: Callable[[], dict[str, int | float]],
    ) -> None:
        self.config = config
        self.name = config.server_name
        self.broker = broker
        self.queries = queries
        self.guard = guard
        self.stats = stats
        self.bot_nick = BOT_NICK
        self.bot_mask = f"{BOT_NICK}!logbot@{config.server_name}"
        self.created = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        self.clients: set[IrcClient] = set()
        self.nicks: dict[str, IrcClient] = {}
        self.channels = Channels(config.max_channels)
        self.bot = LogBot(self)
        self.limits = ConnectionLimits("irc", config.max_clients, config.max_clients_per_ip)
        self.hosts: list[str] = []
        self.port = config.port
        self.cut: dict[str, int] = {}  # clients disconnected by the server, by reason
        # Events the channels' streams left out, by the broker's reason (rate: over
        # irc.rate; slow: the stream fell behind), and the recent ones for !show.
        self.stream_skipped: dict[str, int] = {}
        self.recent = Recent()
        self._gone_sent = 0  # lines and skips of clients that left, for the counters
        self._gone_skipped = 0
        self._server: asyncio.AbstractServer | None = None
        self._ticker: asyncio.Task[None] | None = None

    # --- component --------------------------------------------------------------------

    async def start(self) -> None:
        for name, levels in RESERVED.items():
            channel = Channel(name, reserved=True)
            channel.topic = f"Live {levels or 'all'} events: say !help for LogBot's commands"
            channel.topic_by, channel.topic_at = self.bot_nick, channel.created_at
            self.channels.add(channel)
            channel.filter = [] if levels is None else [("level", levels)]
        loop = asyncio.get_running_loop()
        tls = self.guard.ssl
        with listening(self.option, self.config.host, self.config.port):
            self._server = await loop.create_server(
                lambda: IrcClient(self),
                self.config.host,
                self.config.port,
                reuse_address=True,
                ssl=tls,
                ssl_handshake_timeout=HANDSHAKE_TIMEOUT if tls is not None else None,
            )
        bound = server_endpoint(self._server)
        self.port, self.hosts = bound.port, bound.hosts
        self._ticker = loop.create_task(self._tick())

    async def stop(self, deadline: float | None = None) -> None:
        if self._server is not None:
            self._server.close()
        if self._ticker is not None:
            self._ticker.cancel()
        for channel in self.channels:
            self._stop_stream(channel)
        for client in list(self.clients):
            client.close("Server shutting down")

    async def close(self) -> None:
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    @property
    def endpoint(self) -> Endpoint | None:
        return Endpoint(self.port, self.hosts) if self._server is not None else None

    def readings(self, out: Readings) -> None:
        sent = self._gone_sent + sum(c.output.sent for c in self.clients)
        slow = self._gone_skipped + sum(c.output.skipped for c in self.clients)
        out.add(IRC_CLIENTS, len(self.clients))
        out.add(IRC_CHANNELS, len(self.channels))
        out.add(IRC_LINES, sent)
        out.each(IRC_SKIPPED, {**self.stream_skipped, "client": slow})
        out.each(IRC_CUT, dict(sorted(self.cut.items())))
        self.limits.readings(out)

    # --- connections ------------------------------------------------------------------

    def connected(self, client: IrcClient) -> None:
        if not self.limits.admit(client.peer.address, len(self.clients)):
            client.close("Too many connections")
            return
        self.clients.add(client)

    def disconnected(self, client: IrcClient, reason: str) -> None:
        if client not in self.clients:
            return
        self.clients.discard(client)
        self.limits.release(client.peer.address)
        self._gone_sent += client.output.sent
        self._gone_skipped += client.output.skipped
        self.quit(client, reason)

    def quit(self, client: IrcClient, reason: str) -> None:
        """Take a client out of its channels (telling their members) and the nick table."""
        line = build(client.mask, "QUIT", reason)
        told: set[IrcClient] = set()
        for channel in list(client.channels):
            for member in channel.members:
                if member is not client and member not in told:
                    told.add(member)
                    member.send(line)
            self.leave(client, channel)
        if self.nicks.get(fold(client.nick)) is client:
            del self.nicks[fold(client.nick)]

    def drop(self, client: IrcClient, reason: str, *, abort: bool = False) -> None:
        """Disconnect a client for `reason` (counted), telling its channels."""
        self.cut[reason] = self.cut.get(reason, 0) + 1
        log_event(logger, logging.INFO, "irc_client_cut", nick=client.nick, reason=reason)
        message = {
            "ping_timeout": "Ping timeout",
            "stuck": "Client did not read",
            "sendq": "SendQ exceeded",
            "register_timeout": "Registration timed out",
            "token": "Token revoked or expired",
            "auth": "Password incorrect",
        }.get(reason, reason)
        client.close(message, abort=abort)
        self.disconnected(client, message)

    # --- commands ---------------------------------------------------------------------

    def dispatch(self, client: IrcClient, message: Message) -> None:
        if client.closing or client not in self.clients:
            return  # gone (its last lines are not handled after it left)
        command = message.command
        if not client.registered and command not in registration.BEFORE_REGISTRATION:
            client.numeric(N.ERR_NOTREGISTERED, "You have not registered")
            return
        handler = HANDLERS.get(command)
        if handler is None:
            client.numeric(N.ERR_UNKNOWNCOMMAND, command, "Unknown command")
            return
        try:
            handler(self, client, message)
        except Exception:
            # A bug in one command must not cut the client (the transport's
            # callback would close it): logged, and the client goes on.
            logger.exception("irc_command_failed", extra={"fields": {"command": command}})

    # --- channels ---------------------------------------------------------------------

    def join(self, client: IrcClient, channel: Channel, operator: bool) -> None:
        channel.members[client] = operator
        client.channels.add(channel)
        self._sync_stream(channel)

    def leave(self, client: IrcClient, channel: Channel) -> None:
        channel.members.pop(client, None)
        client.channels.discard(channel)
        self._sync_stream(channel)
        if not channel.members and not channel.reserved:
            self.channels.remove(channel)

    def set_filter(self, channel: Channel, params: list[tuple[str, str]] | None) -> None:
        """What `channel` streams from now on (None: nothing). A bad filter raises
        the query parser's errors, a stream past the broker's bound
        TooManySubscribers; the channel's filter is then left as it was."""
        if params is not None:
            live_filter(params, self.queries.config)  # checked before anything changes
        old, channel.filter = channel.filter, params
        self._stop_stream(channel)
        try:
            self._sync_stream(channel)
        except Exception:
            channel.filter = old
            self._sync_stream(channel)
            raise

    def _sync_stream(self, channel: Channel) -> None:
        """A stream runs while the channel streams and has members: a log channel
        nobody reads costs nothing (a level filter needs every event parsed)."""
        wanted = channel.filter is not None and bool(channel.members)
        if wanted and channel.stream is None:
            assert channel.filter is not None
            stream = LogStream(self, channel, channel.filter)
            stream.start()
            channel.stream = stream
        elif not wanted:
            self._stop_stream(channel)

    def _stop_stream(self, channel: Channel) -> None:
        if channel.stream is not None:
            channel.stream.stop()
            channel.stream = None

    def to_channel(self, channel: Channel, line: bytes, skip: IrcClient | None = None) -> None:
        for member in channel.members:
            if member is not skip:
                member.send(line)

    # --- the ticker -------------------------------------------------------------------

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            now = time.monotonic()
            for client in list(self.clients):
                try:
                    self._check(client, now)
                except Exception:  # one client's trouble must not stop the ticker
                    logger.exception("irc_tick_failed", extra={"fields": {"nick": client.nick}})
            for channel in self.channels:
                if channel.stream is not None:
                    channel.stream.tell_skips()

    def _check(self, client: IrcClient, now: float) -> None:
        config = self.config
        if client.closing:
            return
        if client.output.overflowed:
            self.drop(client, "sendq", abort=True)
        elif client.output.stuck_for(now) > config.stuck_timeout:
            self.drop(client, "stuck", abort=True)
        elif not client.registered:
            if now - client.connected_at > config.register_timeout:
                self.drop(client, "register_timeout")
        elif not self.guard.still_valid(client.principal):
            self.guard.cut(client.principal, client.peer)
            self.drop(client, "token")
        elif client.pinged_at is not None:
            if now - client.pinged_at > config.ping_timeout:
                self.drop(client, "ping_timeout")
        elif now - client.last_heard > config.ping_interval:
            client.pinged_at = now
            client.send(build(None, "PING", self.name))


HANDLERS: dict[str, Handler] = {
    **registration.HANDLERS,
    **commands.HANDLERS,
    **info.HANDLERS,
    **serverinfo.HANDLERS,
}
