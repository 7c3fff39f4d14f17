"""IRC channels: members, operators, topic, modes; and the server's table of them.

Names are compared in ASCII case (ISUPPORT `CASEMAPPING=ascii`). The log
channels (`RESERVED`) exist from the start, held by LogBot, and stay when
empty; a channel a client creates is gone when its last member leaves, and
the first client to join it is its operator.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from logcaster.security.neutralize import needs_neutralizing

if TYPE_CHECKING:
    from logcaster.frontends.irc.connection import IrcClient
    from logcaster.frontends.irc.logstream import LogStream

CHANNEL_LEN = 50
BOT_NICK = "LogBot"
# The log channels and the levels each streams (`level=` of the query syntax).
RESERVED: dict[str, str | None] = {
    "#logs-all": None,
    "#logs-error": "ERROR,FATAL",
    "#logs-warning": "WARN",
    "#logs-info": "INFO",
    "#logs-debug": "DEBUG,TRACE",
}
CHANNEL_MODES = "nt"  # no messages from outside, topic set by operators


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold(name: str) -> str:
    """A nick's or channel's name for comparing: `CASEMAPPING=ascii`, A-Z only."""
    return name.translate(_ASCII_LOWER)


def valid_channel(name: str) -> bool:
    """`#` and up to CHANNEL_LEN bytes in all; no space, comma, colon, control,
    bidi or line-separator character (a name is shown as it is)."""
    return (
        1 < len(name.encode()) <= CHANNEL_LEN
        and name.startswith("#")
        and not any(c in name for c in " ,:\ufffd")
        and all(ord(c) > 32 for c in name)
        and not needs_neutralizing(name)
    )


class Channel:
    """One channel. `members` maps each client to whether it is an operator."""

    def __init__(self, name: str, reserved: bool = False) -> None:
        self.name = name
        self.reserved = reserved
        self.members: dict[IrcClient, bool] = {}
        self.created_at = int(time.time())
        self.topic = ""
        self.topic_by = ""
        self.topic_at = 0
        self.modes = set(CHANNEL_MODES)
        # What the channel streams (`key=value` filters of the query syntax), None:
        # no logs; and the stream that runs it, only while someone is in the channel.
        self.filter: list[tuple[str, str]] | None = None
        self.stream: LogStream | None = None

    def prefix_of(self, client: IrcClient) -> str:
        return "@" if self.members.get(client) else ""

    def names(self) -> list[str]:
        """Members with their prefix, LogBot first on a streaming channel."""
        shown = [self.prefix_of(c) + c.nick for c in self.members]
        if self.filter is not None:
            shown.insert(0, "@" + BOT_NICK)
        return shown


class Channels:
    """Every channel on the server, by folded name; bounded by `irc.max_channels`."""

    def __init__(self, most: int) -> None:
        self.most = most
        self._by_name: dict[str, Channel] = {}

    def get(self, name: str) -> Channel | None:
        return self._by_name.get(fold(name))

    def add(self, channel: Channel) -> None:
        self._by_name[fold(channel.name)] = channel

    def full(self) -> bool:
        return len(self._by_name) >= self.most

    def remove(self, channel: Channel) -> None:
        self._by_name.pop(fold(channel.name), None)

    def __iter__(self) -> Iterator[Channel]:
        return iter(list(self._by_name.values()))

    def __len__(self) -> int:
        return len(self._by_name)
