"""What clients ask about: NAMES, LIST, WHO, WHOIS, MODE, MOTD, USERHOST, ISON.

LogBot answers WHO and WHOIS like a member of each channel that streams logs
(it holds them as operator), though it is not a connection.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from logcaster.frontends.irc import numerics as N
from logcaster.frontends.irc.channels import Channel, fold
from logcaster.frontends.irc.message import MAX_LINE_BYTES, Message, build

if TYPE_CHECKING:
    from logcaster.frontends.irc.connection import IrcClient
    from logcaster.frontends.irc.server import Handler, IrcServer

BOT_REALNAME = "LogCaster's log bot: say !help"


def send_names(server: IrcServer, client: IrcClient, channel: Channel) -> None:
    """353 lines of at most 512 bytes, then 366."""
    head = f":{server.name} {N.RPL_NAMREPLY} {client.nick} = {channel.name} :"
    room = MAX_LINE_BYTES - len(head.encode()) - 2
    batch: list[str] = []
    size = 0
    for name in channel.names():
        if batch and size + len(name) + 1 > room:
            client.numeric(N.RPL_NAMREPLY, "=", channel.name, " ".join(batch))
            batch, size = [], 0
        batch.append(name)
        size += len(name) + 1
    if batch:
        client.numeric(N.RPL_NAMREPLY, "=", channel.name, " ".join(batch))
    client.numeric(N.RPL_ENDOFNAMES, channel.name, "End of /NAMES list.")


def names(server: IrcServer, client: IrcClient, msg: Message) -> None:
    if not msg.params:
        client.numeric(N.RPL_ENDOFNAMES, "*", "End of /NAMES list.")
        return
    for name in msg.params[0].split(",")[:4]:
        channel = server.channels.get(name)
        if channel is None:
            client.numeric(N.RPL_ENDOFNAMES, name[:60], "End of /NAMES list.")
        else:
            send_names(server, client, channel)


def list_(server: IrcServer, client: IrcClient, msg: Message) -> None:
    wanted = {fold(n) for n in msg.arg(0).split(",") if n} if msg.params else None
    client.numeric(N.RPL_LISTSTART, "Channel", "Users  Name")
    for channel in server.channels:
        if wanted is None or fold(channel.name) in wanted:
            count = len(channel.members) + (channel.filter is not None)
            client.numeric(N.RPL_LIST, channel.name, str(count), channel.topic or "")
    client.numeric(N.RPL_LISTEND, "End of /LIST")


def who(server: IrcServer, client: IrcClient, msg: Message) -> None:
    mask = msg.arg(0, "*")
    channel = server.channels.get(mask) if mask.startswith("#") else None
    if channel is not None:
        if channel.filter is not None:
            _who_bot(server, client, channel.name)
        for member in channel.members:
            _who_line(server, client, member, channel.name, channel.prefix_of(member))
    elif fold(mask) == fold(server.bot_nick):
        _who_bot(server, client, "*")
    else:
        other = server.nicks.get(fold(mask))
        if other is not None:
            _who_line(server, client, other, "*", "")
    client.numeric(N.RPL_ENDOFWHO, mask[:60] or "*", "End of /WHO list.")


def _who_line(
    server: IrcServer, client: IrcClient, other: IrcClient, where: str, prefix: str
) -> None:
    state = ("G" if other.away is not None else "H") + prefix
    client.numeric(
        N.RPL_WHOREPLY,
        where,
        other.user or "~u",
        other.host,
        server.name,
        other.nick,
        state,
        f"0 {other.realname or other.nick}",
    )


def _who_bot(server: IrcServer, client: IrcClient, where: str) -> None:
    client.numeric(
        N.RPL_WHOREPLY, where, "logbot", server.name, server.name, server.bot_nick,
        "H@" if where != "*" else "H", f"0 {BOT_REALNAME}",
    )  # fmt: skip


def whois(server: IrcServer, client: IrcClient, msg: Message) -> None:
    if not msg.params:
        client.numeric(N.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    wanted = msg.params[-1]  # WHOIS [server] nick
    for name in wanted.split(",")[:4]:
        if fold(name) == fold(server.bot_nick):
            client.numeric(
                N.RPL_WHOISUSER, server.bot_nick, "logbot", server.name, "*", BOT_REALNAME
            )
            client.numeric(N.RPL_WHOISSERVER, server.bot_nick, server.name, "LogCaster")
        else:
            other = server.nicks.get(fold(name))
            if other is None or not other.registered:
                client.numeric(N.ERR_NOSUCHNICK, name[:60], "No such nick/channel")
                client.numeric(N.RPL_ENDOFWHOIS, name[:60], "End of /WHOIS list.")
                continue
            client.numeric(N.RPL_WHOISUSER, other.nick, other.user, other.host, "*", other.realname)
            joined = " ".join(c.prefix_of(other) + c.name for c in other.channels)
            if joined:
                client.numeric(N.RPL_WHOISCHANNELS, other.nick, joined[:400])
            client.numeric(N.RPL_WHOISSERVER, other.nick, server.name, "LogCaster")
            if other.away is not None:
                client.numeric(N.RPL_AWAY, other.nick, other.away)
            idle = int(time.monotonic() - other.last_heard)
            client.numeric(
                N.RPL_WHOISIDLE,
                other.nick,
                str(idle),
                str(other.signon),
                "seconds idle, signon time",
            )
            name = other.nick
        client.numeric(N.RPL_ENDOFWHOIS, name, "End of /WHOIS list.")


def mode(server: IrcServer, client: IrcClient, msg: Message) -> None:
    if not msg.params:
        client.numeric(N.ERR_NEEDMOREPARAMS, "MODE", "Not enough parameters")
        return
    target = msg.params[0]
    if target.startswith("#"):
        _channel_mode(server, client, msg)
        return
    if fold(target) != fold(client.nick):
        other = server.nicks.get(fold(target))
        if other is None:
            client.numeric(N.ERR_NOSUCHNICK, target[:60], "No such nick/channel")
        else:
            client.numeric(N.ERR_USERSDONTMATCH, "Cant change mode for other users")
        return
    if len(msg.params) > 1:
        sign, changed = "+", []
        for ch in msg.params[1]:
            if ch in "+-":
                sign = ch
            elif ch == "i":
                (client.modes.add if sign == "+" else client.modes.discard)("i")
                changed.append(sign + ch)
            else:
                client.numeric(N.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag")
        if changed:
            client.send(_mode_line(client.mask, client.nick, "".join(changed)))
        return
    client.numeric(N.RPL_UMODEIS, "+" + "".join(sorted(client.modes)))


def _mode_line(source: str, target: str, modes: str, *args: str) -> bytes:
    return build(source, "MODE", target, modes, *args)


def _channel_mode(server: IrcServer, client: IrcClient, msg: Message) -> None:
    channel = server.channels.get(msg.params[0])
    if channel is None:
        client.numeric(N.ERR_NOSUCHCHANNEL, msg.params[0][:60], "No such channel")
        return
    if len(msg.params) == 1:
        client.numeric(N.RPL_CHANNELMODEIS, channel.name, "+" + "".join(sorted(channel.modes)))
        client.numeric(N.RPL_CREATIONTIME, channel.name, str(channel.created_at))
        return
    changes = msg.params[1]
    if changes.lstrip("+") == "b":  # the ban list: queried, always empty
        client.numeric(N.RPL_ENDOFBANLIST, channel.name, "End of channel ban list")
        return
    if client not in channel.members or not channel.members[client]:
        client.numeric(N.ERR_CHANOPRIVSNEEDED, channel.name, "You're not channel operator")
        return
    args = list(msg.params[2:])
    sign, done, done_args = "+", [], []
    for ch in changes[:8]:
        if ch in "+-":
            sign = ch
        elif ch in "nt":
            (channel.modes.add if sign == "+" else channel.modes.discard)(ch)
            done.append(sign + ch)
        elif ch == "o" and not args:
            client.numeric(N.ERR_NEEDMOREPARAMS, "MODE", "Not enough parameters")
        elif ch == "o":
            wanted = args.pop(0)
            target = server.nicks.get(fold(wanted))
            if target is None or target not in channel.members:
                client.numeric(
                    N.ERR_USERNOTINCHANNEL, wanted[:60], channel.name, "They aren't on that channel"
                )
                continue
            channel.members[target] = sign == "+"
            done.append(sign + "o")
            done_args.append(target.nick)
        elif ch == "b":
            if args:
                args.pop(0)  # a ban mask: bans are not kept, the mask is passed over
            continue
        else:
            client.numeric(N.ERR_UNKNOWNMODE, ch, "is unknown mode char to me")
    if done:
        server.to_channel(channel, _mode_line(client.mask, channel.name, "".join(done), *done_args))


def userhost(server: IrcServer, client: IrcClient, msg: Message) -> None:
    found = []
    for name in msg.params[:5]:
        if fold(name) == fold(server.bot_nick):
            found.append(f"{server.bot_nick}=+logbot@{server.name}")
        other = server.nicks.get(fold(name))
        if other is not None:
            found.append(f"{other.nick}={'-' if other.away else '+'}{other.user}@{other.host}")
    client.numeric(N.RPL_USERHOST, " ".join(found))


def ison(server: IrcServer, client: IrcClient, msg: Message) -> None:
    words = " ".join(msg.params).split()[:20]
    online = [server.nicks[fold(w)].nick for w in words if fold(w) in server.nicks]
    if any(fold(w) == fold(server.bot_nick) for w in words):
        online.insert(0, server.bot_nick)
    client.numeric(N.RPL_ISON, " ".join(online))


HANDLERS: dict[str, Handler] = {
    "NAMES": names,
    "LIST": list_,
    "WHO": who,
    "WHOIS": whois,
    "MODE": mode,
    "USERHOST": userhost,
    "ISON": ison,
}
