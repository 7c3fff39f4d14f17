"""Who may run which line-protocol command, and the admin commands AUDIT and RELOAD.

With `auth.enabled` a connection's first line is `AUTH <token>` and the
command follows on the next line (`printf 'AUTH lc_…\\nCOUNT\\n' | nc …`). A
missing or bad token, or a role without the command's permission, gets the
same `ERROR: unauthorized`. Searches, CLEAR, AUDIT and RELOAD are audited
(one entry each, refusals included); COUNT, STATS and HELP only when refused.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path

import orjson

from logcaster.security import audit
from logcaster.security.guard import Guard, Peer
from logcaster.security.neutralize import json_safe, neutral
from logcaster.security.roles import Permission, Principal

UNAUTHORIZED = "unauthorized"
AUTH_LINE = re.compile(r"^\s*AUTH\s+(\S+)\s*$", re.I)
# decrypt=1 (the query parser's truthy values, quoted or not): DECRYPT, not READ_LOGS.
ASKS_DECRYPT = re.compile(r"(?<!\S)decrypt=([\"']?)(?:1|true|yes)\1(?!\S)", re.I)

# verb -> (permission, audit action; None: audited only when refused)
ACCESS: dict[str, tuple[Permission, str | None]] = {
    "COUNT": (Permission.READ_LOGS, None),
    "STATS": (Permission.READ_LOGS, None),
    "HELP": (Permission.READ_LOGS, None),
    "QUERY": (Permission.READ_LOGS, "query"),
    "FILTER": (Permission.READ_LOGS, "query"),
    "SEARCH": (Permission.READ_LOGS, "query"),
    "REGEX": (Permission.READ_LOGS, "query"),
    "RECENT": (Permission.READ_LOGS, "query"),
    "CLEAR": (Permission.DELETE_DATA, "clear"),
    "AUDIT": (Permission.READ_AUDIT, "audit"),
    # Recorded after it ran, with its result (`reload_answer`): one entry.
    "RELOAD": (Permission.RELOAD, None),
}
AUDIT_DEFAULT = 100
HELP_LINES = (
    "  AUDIT [limit=N] [action=A] [who=W]  the newest audit entries (admin)",
    "  RELOAD                      read the configuration again, like SIGHUP (operator)",
    "With auth.enabled, send AUTH <token> as the first line, the command on the next.",
)


def verb_of(line: str) -> tuple[str, str, bool]:
    """(verb, the rest, JSON asked by prefix) of a command line, told without parsing it."""
    head, _, rest = line.strip().partition(" ")
    as_json = head.upper() == "JSON"
    if as_json:
        head, _, rest = rest.strip().partition(" ")
    return head.upper(), rest.strip(), as_json


def token_of(line: str) -> str | None:
    """The token of an `AUTH <token>` line; None for any other line."""
    m = AUTH_LINE.match(line)
    return m.group(1) if m else None


def permitted(guard: Guard, principal: Principal, line: str, peer: Peer) -> bool:
    """Whether `principal` may run `line`'s command (unknown verbs are left to the
    parser's error); audited per ACCESS."""
    verb, _, _ = verb_of(line)
    access = ACCESS.get(verb)
    if access is None:
        return True
    permission, action = access
    if action == "query" and ASKS_DECRYPT.search(line):
        permission = Permission.DECRYPT  # recorded as a query, refused for non-admins
    return guard.allow(
        principal,
        permission,
        action or verb.lower(),
        peer,
        detail=line.strip(),
        record=action is not None,
    )


async def audit_answer(directory: Path | None, rest: str, as_json: bool) -> str:
    """AUDIT [limit=N] [action=A] [who=W]: the newest entries first, one JSON line
    each (terminal-safe: entries hold what other clients sent). The files are
    read in a worker thread: up to retention_files x max_file_bytes."""
    params: dict[str, str] = {}
    for word in rest.split():
        key, eq, value = word.partition("=")
        if not eq or key not in ("limit", "action", "who"):
            return _error(f"AUDIT takes limit=N, action=A, who=W (not {word!r})", as_json)
        params[key] = value
    try:
        limit = int(params.get("limit", AUDIT_DEFAULT))
    except ValueError:
        return _error("limit must be a whole number", as_json)
    if not 1 <= limit <= audit.MAX_VIEW:
        return _error(f"limit must be 1 to {audit.MAX_VIEW}", as_json)
    if directory is None:
        return _error("the audit log is off (set audit.dir or persist.dir)", as_json)
    entries = await asyncio.to_thread(
        audit.read_view, directory, limit, params.get("action"), params.get("who")
    )
    if as_json:
        return json_safe(orjson.dumps({"entries": entries})).decode() + "\n"
    lines = [json_safe(orjson.dumps(e)).decode() for e in entries]
    return "".join(f"{line}\n" for line in [f"FOUND: {len(entries)} entries", *lines])


def reload_answer(
    reload: Callable[[], str | None] | None,
    as_json: bool,
    guard: Guard,
    principal: Principal,
    peer: Peer,
) -> str:
    """RELOAD: read the configuration again; audited with its result."""
    failure = "no configuration source" if reload is None else reload()
    result = "ok" if failure is None else "failed"
    guard.security.record(principal, "reload", result, peer, guard.listener, failure)
    if failure is not None:
        return _error(f"reload failed: {failure}", as_json)
    return '{"reloaded": true}\n' if as_json else "OK: reloaded\n"


def _error(message: str, as_json: bool) -> str:
    if as_json:
        return json_safe(orjson.dumps({"error": message})).decode() + "\n"
    return f"ERROR: {neutral(message)}\n"
