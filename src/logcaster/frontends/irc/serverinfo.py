"""Questions about the server itself: TIME, LUSERS, VERSION, MOTD, ADMIN, INFO,
LINKS, STATS, and WHOWAS (which remembers no one). Clients send them on their
own (irssi after connecting, or on a user's /whowas) and wait for the
closing numeric, so each gets its proper answer rather than 421."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from logcaster.frontends.irc import numerics as N
from logcaster.frontends.irc.message import Message
from logcaster.frontends.irc.registration import VERSION, send_motd

if TYPE_CHECKING:
    from logcaster.frontends.irc.connection import IrcClient
    from logcaster.frontends.irc.server import Handler, IrcServer


def lusers(server: IrcServer, client: IrcClient, msg: Message) -> None:
    send_lusers(server, client)


def send_lusers(server: IrcServer, client: IrcClient) -> None:
    users = len(server.clients)
    client.numeric(N.RPL_LUSERCLIENT, f"There are {users} users and 0 services on 1 server")
    client.numeric(N.RPL_LUSERCHANNELS, str(len(server.channels)), "channels formed")
    client.numeric(N.RPL_LUSERME, f"I have {users} clients and 0 servers")


def time_(server: IrcServer, client: IrcClient, msg: Message) -> None:
    now = time.strftime("%A %B %d %Y -- %H:%M:%S +00:00", time.gmtime())
    client.numeric(N.RPL_TIME, server.name, now)


def version(server: IrcServer, client: IrcClient, msg: Message) -> None:
    client.numeric(N.RPL_VERSION, VERSION, server.name, "LogCaster IRC")


def motd(server: IrcServer, client: IrcClient, msg: Message) -> None:
    send_motd(server, client)


def admin(server: IrcServer, client: IrcClient, msg: Message) -> None:
    client.numeric(N.RPL_ADMINME, server.name, "Administrative info")
    client.numeric(N.RPL_ADMINLOC1, f"LogCaster on {server.config.network}")
    client.numeric(N.RPL_ADMINLOC2, "Ask whoever runs this log server")
    client.numeric(N.RPL_ADMINEMAIL, "-")


def info(server: IrcServer, client: IrcClient, msg: Message) -> None:
    client.numeric(N.RPL_INFO, f"{VERSION}: live log channels and LogBot (docs/irc.md)")
    client.numeric(N.RPL_ENDOFINFO, "End of /INFO list.")


def links(server: IrcServer, client: IrcClient, msg: Message) -> None:
    client.numeric(N.RPL_LINKS, "*", server.name, server.name, "0 LogCaster")
    client.numeric(N.RPL_ENDOFLINKS, "*", "End of /LINKS list.")


def stats(server: IrcServer, client: IrcClient, msg: Message) -> None:
    letter = msg.arg(0, "*")[:1] or "*"
    client.numeric(N.RPL_ENDOFSTATS, letter, "End of /STATS report")


def whowas(server: IrcServer, client: IrcClient, msg: Message) -> None:
    if not msg.params:
        client.numeric(N.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    nick = msg.params[0][:60]
    client.numeric(N.ERR_WASNOSUCHNICK, nick, "There was no such nickname")
    client.numeric(N.RPL_ENDOFWHOWAS, nick, "End of WHOWAS")


HANDLERS: dict[str, Handler] = {
    "LUSERS": lusers,
    "TIME": time_,
    "VERSION": version,
    "MOTD": motd,
    "ADMIN": admin,
    "INFO": info,
    "LINKS": links,
    "STATS": stats,
    "WHOWAS": whowas,
}
