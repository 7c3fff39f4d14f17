"""Who may do what: roles, their permissions, and the principal a request acts as.

Roles follow seed 003 plus one for senders. A role holds a fixed set of
permissions; front ends ask `Principal.may(permission)` and never compare role
names, so a new role is one line here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from logcaster.options import RoleName


class Permission(enum.Enum):
    SEND = "SEND"  # send events (every ingest listener)
    READ_LOGS = "READ_LOGS"  # query, tail, IRC channels, stats
    EXPORT_DATA = "EXPORT_DATA"  # download a whole search (NDJSON export)
    DELETE_DATA = "DELETE_DATA"  # CLEAR, purge
    RELOAD = "RELOAD"  # re-read the config and certificates (SIGHUP's equivalent)
    MODIFY_CONFIG = "MODIFY_CONFIG"  # change config, tokens or keys over the network
    READ_AUDIT = "READ_AUDIT"  # the audit view
    DECRYPT = "DECRYPT"  # see encrypted fields in clear (with the key)


ROLES: tuple[RoleName, ...] = ("ingest", "viewer", "operator", "admin")

_VIEWER = frozenset({Permission.READ_LOGS})
PERMISSIONS: dict[str, frozenset[Permission]] = {
    "ingest": frozenset({Permission.SEND}),
    "viewer": _VIEWER,
    # Operators reload (SIGHUP's equivalent) but change no config, tokens or keys.
    "operator": _VIEWER | {Permission.EXPORT_DATA, Permission.RELOAD},
    "admin": frozenset(Permission),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """The identity a request acts as: a token's name, a certificate subject, or
    `anonymous` when authentication is off (then it may do everything)."""

    name: str
    role: RoleName
    how: Literal["token", "certificate", "anonymous", "network"] = "token"
    token_id: str | None = None  # a token's id: checked again while a connection lasts

    def may(self, permission: Permission) -> bool:
        return permission in PERMISSIONS[self.role]


# Authentication off: every request acts as this (the behaviour before SPEC §9).
ANONYMOUS = Principal("anonymous", "admin", "anonymous")
