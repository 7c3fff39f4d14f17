"""Connecting: CAP, PASS, NICK, USER, PING/PONG, QUIT, and the welcome.

Modern clients open with `CAP LS 302`. The server offers no capabilities: it
answers `CAP * LS :`, holds registration until `CAP END`, NAKs every `REQ`
and answers an unknown subcommand with 410. With `auth.enabled` the token is
the connection password (`PASS <token>`: irssi's `/connect HOST PORT TOKEN`,
WeeChat's `-password=`); a role without READ_LOGS is refused like a wrong
token (464), and both are audited.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING

from logcaster import __version__
from logcaster.frontends.irc import numerics as N
from logcaster.frontends.irc.channels import CHANNEL_LEN, fold
from logcaster.frontends.irc.message import Message, build
from logcaster.security.roles import Permission

if TYPE_CHECKING:
    from logcaster.frontends.irc.connection import IrcClient
    from logcaster.frontends.irc.server import Handler, IrcServer

logger = logging.getLogger("logcaster.irc")

NICK_LEN = 30
TOPIC_LEN = 300
VERSION = f"logcaster-{__version__}"
# RFC 2812 §2.3.1: a letter or special first, then letters, digits, specials, "-".
NICK = re.compile(r"^[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]*$")
BEFORE_REGISTRATION = frozenset({"CAP", "PASS", "NICK", "USER", "PING", "PONG", "QUIT"})


def isupport(server: IrcServer) -> list[str]:
    return [
        "CASEMAPPING=ascii",
        "CHANTYPES=#",
        "PREFIX=(o)@",
        "CHANMODES=b,,,nt",
        f"NETWORK={server.config.network}",
        f"NICKLEN={NICK_LEN}",
        f"CHANNELLEN={CHANNEL_LEN}",
        f"TOPICLEN={TOPIC_LEN}",
        f"CHANLIMIT=#:{server.config.max_joined}",
        "MODES=3",
    ]


def cap(server: IrcServer, client: IrcClient, msg: Message) -> None:
    sub = msg.arg(0).upper()
    target = client.nick if client.registered else "*"
    if sub == "LS":
        if not client.registered:
            client.capping = True
        client.send(build(server.name, "CAP", target, "LS", ""))
    elif sub == "LIST":
        client.send(build(server.name, "CAP", target, "LIST", ""))
    elif sub == "REQ":
        client.send(build(server.name, "CAP", target, "NAK", msg.arg(1)[:400]))
    elif sub == "END":
        client.capping = False
        _try_register(server, client)
    elif not sub:
        client.numeric(N.ERR_NEEDMOREPARAMS, "CAP", "Not enough parameters")
    else:
        client.numeric(N.ERR_INVALIDCAPCMD, sub[:20], "Invalid CAP command")


def password(server: IrcServer, client: IrcClient, msg: Message) -> None:
    if client.registered:
        client.numeric(N.ERR_ALREADYREGISTERED, "You may not reregister")
    elif not msg.params:
        client.numeric(N.ERR_NEEDMOREPARAMS, "PASS", "Not enough parameters")
    else:
        client.password = msg.params[0]


def nick(server: IrcServer, client: IrcClient, msg: Message) -> None:
    wanted = msg.arg(0)
    if not wanted:
        client.numeric(N.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    if len(wanted) > NICK_LEN or not NICK.match(wanted):
        client.numeric(N.ERR_ERRONEUSNICKNAME, wanted[:NICK_LEN], "Erroneous nickname")
        return
    holder = server.nicks.get(fold(wanted))
    if fold(wanted) == fold(server.bot_nick) or (holder is not None and holder is not client):
        client.numeric(N.ERR_NICKNAMEINUSE, wanted, "Nickname is already in use")
        return
    if wanted == client.nick:
        return
    old_mask = client.mask
    if fold(client.nick) in server.nicks and server.nicks[fold(client.nick)] is client:
        del server.nicks[fold(client.nick)]
    server.nicks[fold(wanted)] = client
    client.nick = wanted
    if not client.registered:
        _try_register(server, client)
        return
    line = build(old_mask, "NICK", wanted)
    told = {client}
    client.send(line)
    for channel in client.channels:
        for member in channel.members:
            if member not in told:
                told.add(member)
                member.send(line)


def user(server: IrcServer, client: IrcClient, msg: Message) -> None:
    if client.registered or client.user:
        client.numeric(N.ERR_ALREADYREGISTERED, "You may not reregister")
        return
    if len(msg.params) < 4 or not msg.params[0]:
        client.numeric(N.ERR_NEEDMOREPARAMS, "USER", "Not enough parameters")
        return
    name = "".join(c for c in msg.params[0] if c.isalnum() or c in "-_.")[:16] or "user"
    client.user = "~" + name
    client.realname = msg.params[3][:100]
    _try_register(server, client)


def ping(server: IrcServer, client: IrcClient, msg: Message) -> None:
    if not msg.params:
        client.numeric(N.ERR_NOORIGIN, "No origin specified")
        return
    client.send(build(server.name, "PONG", server.name, msg.params[0][:200]))


def pong(server: IrcServer, client: IrcClient, msg: Message) -> None:
    return None  # any line resets the client's ping clock (connection._handle)


def quit_(server: IrcServer, client: IrcClient, msg: Message) -> None:
    reason = "Quit: " + msg.arg(0)[:200] if msg.params else "Client Quit"
    server.quit(client, reason)
    client.close(reason)


# --- registration -----------------------------------------------------------------


def _try_register(server: IrcServer, client: IrcClient) -> None:
    if client.registered or client.capping or client.nick == "*" or not client.user:
        return
    if client.registering:
        return
    if not server.guard.required:
        client.registered = True
        welcome(server, client)
        return
    # The token check may take a while (scrypt, in a thread): the client's
    # next lines wait until it is done, so they are read as registered ones.
    client.registering = True
    asyncio.get_running_loop().create_task(_register(server, client))


async def _register(server: IrcServer, client: IrcClient) -> None:
    try:
        await _check_token(server, client)
    except Exception:
        # Never leave a client waiting with its reading paused: logged, cut.
        logger.exception("irc_register_failed", extra={"fields": {"nick": client.nick}})
        server.drop(client, "internal error")


async def _check_token(server: IrcServer, client: IrcClient) -> None:
    guard = server.guard
    principal = await guard.authenticate(client.password, client.peer)
    allowed = principal is not None and guard.allow(
        principal, Permission.READ_LOGS, "irc", client.peer, record=False
    )
    if client.closing:
        return
    if principal is None or not allowed:
        client.numeric(N.ERR_PASSWDMISMATCH, "Password incorrect")
        server.drop(client, "auth")
        return
    client.principal = principal
    client.registered = True
    welcome(server, client)
    client.registering = False
    client.read_on()


def welcome(server: IrcServer, client: IrcClient) -> None:
    c = server.config
    client.numeric(N.RPL_WELCOME, f"Welcome to the {c.network} IRC Network {client.mask}")
    client.numeric(N.RPL_YOURHOST, f"Your host is {server.name}, running version {VERSION}")
    client.numeric(N.RPL_CREATED, f"This server was created {server.created}")
    client.numeric(N.RPL_MYINFO, server.name, VERSION, "i", "bnot")
    client.numeric(N.RPL_ISUPPORT, *isupport(server), "are supported by this server")
    # LUSERS and MOTD, as every ircd sends them after the welcome.
    client.numeric(
        N.RPL_LUSERCLIENT, f"There are {len(server.clients)} users and 0 services on 1 server"
    )
    send_motd(server, client)


def send_motd(server: IrcServer, client: IrcClient) -> None:
    c = server.config
    if not c.motd:
        client.numeric(N.ERR_NOMOTD, "MOTD File is missing")
        return
    client.numeric(N.RPL_MOTDSTART, f"- {server.name} Message of the day - ")
    for line in c.motd:
        client.numeric(N.RPL_MOTD, f"- {line}")
    client.numeric(N.RPL_ENDOFMOTD, "End of /MOTD command.")


HANDLERS: dict[str, Handler] = {
    "CAP": cap,
    "PASS": password,
    "NICK": nick,
    "USER": user,
    "PING": ping,
    "PONG": pong,
    "QUIT": quit_,
}
