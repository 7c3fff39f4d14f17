"""Channel and message commands: JOIN, PART, PRIVMSG, NOTICE, TOPIC, KICK, AWAY, INVITE.

Messages starting with `!` in a channel, or sent to LogBot, are LogBot's
commands (bot.py); they are passed on to the channel like any message too,
so everyone sees the question with its answer.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from logcaster.frontends.irc import info
from logcaster.frontends.irc import numerics as N
from logcaster.frontends.irc.channels import Channel, fold, valid_channel
from logcaster.frontends.irc.message import MAX_LINE_BYTES, Message, build
from logcaster.frontends.irc.registration import TOPIC_LEN
from logcaster.pipeline.broker import TooManySubscribers

if TYPE_CHECKING:
    from logcaster.frontends.irc.connection import IrcClient
    from logcaster.frontends.irc.server import Handler, IrcServer

MAX_TARGETS = 4  # channels or nicks in one JOIN, PART or PRIVMSG


def join(server: IrcServer, client: IrcClient, msg: Message) -> None:
    if not msg.params:
        client.numeric(N.ERR_NEEDMOREPARAMS, "JOIN", "Not enough parameters")
        return
    if msg.params[0] == "0":  # JOIN 0: leave every channel
        for channel in list(client.channels):
            _part(server, client, channel, "Left all channels")
        return
    for name in msg.params[0].split(",")[:MAX_TARGETS]:
        if not valid_channel(name):
            client.numeric(N.ERR_NOSUCHCHANNEL, name[:60] or "*", "No such channel")
            continue
        found = server.channels.get(name)
        if found is not None and client in found.members:
            continue
        if len(client.channels) >= server.config.max_joined:
            client.numeric(N.ERR_TOOMANYCHANNELS, name, "You have joined too many channels")
            continue
        operator = False
        if found is None:
            if server.channels.full():
                client.numeric(N.ERR_TOOMANYCHANNELS, name, "Too many channels on this server")
                continue
            found = Channel(name)
            server.channels.add(found)
            operator = True  # the first to join a channel it creates runs it
        channel = found
        try:
            server.join(client, channel, operator)
        except TooManySubscribers:
            server.leave(client, channel)
            client.numeric(N.ERR_CHANNELISFULL, name, "Cannot join channel (too many live streams)")
            continue
        server.to_channel(channel, build(client.mask, "JOIN", channel.name))
        if channel.topic:
            client.numeric(N.RPL_TOPIC, channel.name, channel.topic)
            client.numeric(
                N.RPL_TOPICWHOTIME, channel.name, channel.topic_by, str(channel.topic_at)
            )
        info.send_names(server, client, channel)


def part(server: IrcServer, client: IrcClient, msg: Message) -> None:
    if not msg.params:
        client.numeric(N.ERR_NEEDMOREPARAMS, "PART", "Not enough parameters")
        return
    reason = msg.arg(1)[:200]
    for name in msg.params[0].split(",")[:MAX_TARGETS]:
        channel = server.channels.get(name)
        if channel is None:
            client.numeric(N.ERR_NOSUCHCHANNEL, name[:60] or "*", "No such channel")
        elif client not in channel.members:
            client.numeric(N.ERR_NOTONCHANNEL, channel.name, "You're not on that channel")
        else:
            _part(server, client, channel, reason)


def _part(server: IrcServer, client: IrcClient, channel: Channel, reason: str) -> None:
    params = (channel.name, reason) if reason else (channel.name,)
    server.to_channel(channel, build(client.mask, "PART", *params))
    server.leave(client, channel)


def privmsg(server: IrcServer, client: IrcClient, msg: Message) -> None:
    _message(server, client, msg, notice=False)


def notice(server: IrcServer, client: IrcClient, msg: Message) -> None:
    _message(server, client, msg, notice=True)


def _message(server: IrcServer, client: IrcClient, msg: Message, notice: bool) -> None:
    command = msg.command
    if not msg.params or not msg.params[0]:
        if not notice:  # NOTICE never gets an automatic reply
            client.numeric(N.ERR_NORECIPIENT, f"No recipient given ({command})")
        return
    text = msg.arg(1)
    if not text:
        if not notice:
            client.numeric(N.ERR_NOTEXTTOSEND, "No text to send")
        return
    for target in msg.params[0].split(",")[:MAX_TARGETS]:
        line = _line(client.mask, command, target, text)
        if target.startswith("#"):
            channel = server.channels.get(target)
            if channel is None:
                if not notice:
                    client.numeric(N.ERR_NOSUCHCHANNEL, target[:60], "No such channel")
                continue
            if client not in channel.members:  # mode n: no messages from outside
                if not notice:
                    client.numeric(N.ERR_CANNOTSENDTOCHAN, channel.name, "Cannot send to channel")
                continue
            server.to_channel(channel, line, skip=client)
            if not notice and text.startswith("!"):
                server.bot.command(client, channel, text)
        elif fold(target) == fold(server.bot_nick):
            if not notice:
                server.bot.command(client, None, text)
        else:
            other = server.nicks.get(fold(target))
            if other is None or not other.registered:
                if not notice:
                    client.numeric(N.ERR_NOSUCHNICK, target[:60], "No such nick/channel")
                continue
            other.send(line)
            if other.away is not None and not notice:
                client.numeric(N.RPL_AWAY, other.nick, other.away)


def _line(source: str, command: str, target: str, text: str) -> bytes:
    room = MAX_LINE_BYTES - len(f":{source} {command} {target} :\r\n".encode())
    data = text.encode("utf-8", "replace")
    if len(data) > room:
        text = data[:room].decode("utf-8", "ignore")
    return build(source, command, target, text)


def topic(server: IrcServer, client: IrcClient, msg: Message) -> None:
    if not msg.params:
        client.numeric(N.ERR_NEEDMOREPARAMS, "TOPIC", "Not enough parameters")
        return
    channel = server.channels.get(msg.params[0])
    if channel is None:
        client.numeric(N.ERR_NOSUCHCHANNEL, msg.params[0][:60], "No such channel")
        return
    if len(msg.params) < 2:
        if channel.topic:
            client.numeric(N.RPL_TOPIC, channel.name, channel.topic)
            client.numeric(
                N.RPL_TOPICWHOTIME, channel.name, channel.topic_by, str(channel.topic_at)
            )
        else:
            client.numeric(N.RPL_NOTOPIC, channel.name, "No topic is set")
        return
    if client not in channel.members:
        client.numeric(N.ERR_NOTONCHANNEL, channel.name, "You're not on that channel")
        return
    if "t" in channel.modes and not channel.members[client]:
        client.numeric(N.ERR_CHANOPRIVSNEEDED, channel.name, "You're not channel operator")
        return
    text = msg.params[1].encode()[:TOPIC_LEN].decode("utf-8", "ignore")
    channel.topic, channel.topic_by, channel.topic_at = text, client.nick, int(time.time())
    server.to_channel(channel, build(client.mask, "TOPIC", channel.name, text))


def kick(server: IrcServer, client: IrcClient, msg: Message) -> None:
    if len(msg.params) < 2:
        client.numeric(N.ERR_NEEDMOREPARAMS, "KICK", "Not enough parameters")
        return
    channel = server.channels.get(msg.params[0])
    if channel is None:
        client.numeric(N.ERR_NOSUCHCHANNEL, msg.params[0][:60], "No such channel")
        return
    if client not in channel.members:
        client.numeric(N.ERR_NOTONCHANNEL, channel.name, "You're not on that channel")
        return
    if not channel.members[client]:
        client.numeric(N.ERR_CHANOPRIVSNEEDED, channel.name, "You're not channel operator")
        return
    reason = msg.arg(2, client.nick)[:200] or client.nick
    for name in msg.params[1].split(",")[:MAX_TARGETS]:
        target = server.nicks.get(fold(name))
        if target is None or target not in channel.members:
            client.numeric(
                N.ERR_USERNOTINCHANNEL, name[:60], channel.name, "They aren't on that channel"
            )
            continue
        server.to_channel(channel, build(client.mask, "KICK", channel.name, target.nick, reason))
        server.leave(target, channel)


def invite(server: IrcServer, client: IrcClient, msg: Message) -> None:
    """Channels have no invite-only mode: an invitation is a message to its target."""
    if len(msg.params) < 2:
        client.numeric(N.ERR_NEEDMOREPARAMS, "INVITE", "Not enough parameters")
        return
    name, where = msg.params[0], msg.params[1]
    target = server.nicks.get(fold(name))
    channel = server.channels.get(where)
    if target is None or not target.registered:
        client.numeric(N.ERR_NOSUCHNICK, name[:60], "No such nick/channel")
    elif channel is None:
        client.numeric(N.ERR_NOSUCHCHANNEL, where[:60], "No such channel")
    elif client not in channel.members:
        client.numeric(N.ERR_NOTONCHANNEL, channel.name, "You're not on that channel")
    elif target in channel.members:
        client.numeric(N.ERR_USERONCHANNEL, target.nick, channel.name, "is already on channel")
    else:
        client.numeric(N.RPL_INVITING, target.nick, channel.name)
        target.send(build(client.mask, "INVITE", target.nick, channel.name))


def away(server: IrcServer, client: IrcClient, msg: Message) -> None:
    if msg.arg(0):
        client.away = msg.params[0][:200]
        client.numeric(N.RPL_NOWAWAY, "You have been marked as being away")
    else:
        client.away = None
        client.numeric(N.RPL_UNAWAY, "You are no longer marked as being away")


HANDLERS: dict[str, Handler] = {
    "JOIN": join,
    "PART": part,
    "PRIVMSG": privmsg,
    "NOTICE": notice,
    "TOPIC": topic,
    "KICK": kick,
    "AWAY": away,
    "INVITE": invite,
}
