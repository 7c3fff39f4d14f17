"""API tokens: created once, stored only as salted scrypt hashes, checked in constant time.

A token reads `lc_<id>_<secret>`: `id` (8 hex digits, not secret) finds its
record without trying every hash; `secret` is 32 random bytes (256 bits),
URL-safe base64. The file holds per token its name, role, salt, the scrypt
hash of the secret, creation and expiry times, never the token. It is written
whole to a temporary file and renamed over (mode 0600), so the server never
reads half a file, and re-read by the server within a second of a change
(`TokenStore.current`): `token revoke` takes effect without a restart.

Checking a token costs one scrypt (tens of milliseconds, by design, against
guessing from a stolen file), so the server checks a presented token once
and then remembers it by a keyed digest (`TokenCache`), forgetting every
entry when the file changes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import secrets
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import orjson

from logcaster.log import log_event
from logcaster.options import RoleName
from logcaster.security.roles import ROLES

logger = logging.getLogger("logcaster.security")

PREFIX = "lc_"
_TOKEN = re.compile(r"^lc_([0-9a-f]{8})_([A-Za-z0-9_-]{43})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
# scrypt: 16 MiB and ~50 ms per check on this machine; OWASP's minimum is N=2^17
# with r=8 for passwords, but a token has 256 random bits: no dictionary to slow.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 14, 8, 1
RECHECK_S = 1.0  # how often the server looks at the file's mtime
CACHE_ENTRIES = 4096


class TokenError(ValueError):
    """A token file or command that cannot be used (the message says why)."""


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: str
    name: str
    role: RoleName
    salt: bytes
    digest: bytes
    created: float
    expires: float | None = None

    def expired(self, now: float) -> bool:
        return self.expires is not None and now >= self.expires

    def public(self) -> dict[str, Any]:
        """What `token list` shows: no salt, no hash."""
        return {
            "name": self.name,
            "role": self.role,
            "id": self.id,
            "created": _iso(self.created),
            "expires": _iso(self.expires) if self.expires is not None else None,
        }


def _hash(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(
        secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=64 << 20, dklen=32
    )


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def read_tokens(path: Path) -> list[TokenRecord]:
    """The records of a token file; an absent file holds none."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise TokenError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        doc = orjson.loads(raw)
        return [
            TokenRecord(
                id=t["id"],
                name=t["name"],
                role=cast(RoleName, t["role"]),
                salt=base64.b64decode(t["salt"], validate=True),
                digest=base64.b64decode(t["hash"], validate=True),
                created=float(t["created"]),
                expires=None if t.get("expires") is None else float(t["expires"]),
            )
            for t in doc["tokens"]
            if t["role"] in ROLES
        ]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise TokenError(f"{path} is not a LogCaster token file: {exc}") from exc


def write_tokens(path: Path, records: list[TokenRecord]) -> None:
    """Replace the file atomically, readable by its owner alone."""
    doc = {
        "version": 1,
        "tokens": [
            {
                "id": r.id,
                "name": r.name,
                "role": r.role,
                "salt": base64.b64encode(r.salt).decode(),
                "hash": base64.b64encode(r.digest).decode(),
                "created": r.created,
                "expires": r.expires,
            }
            for r in records
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=".tokens-", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, orjson.dumps(doc, option=orjson.OPT_INDENT_2))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def create_token(
    path: Path, name: str, role: str, expires: float | None = None
) -> tuple[str, TokenRecord]:
    """Add a token; returns the token (shown once) and its record."""
    if not _NAME.match(name):
        raise TokenError(f"bad name {name!r}: letters, digits and _.@- up to 64")
    if role not in ROLES:
        raise TokenError(f"bad role {role!r} (one of: {', '.join(ROLES)})")
    records = read_tokens(path)
    if any(r.name == name for r in records):
        raise TokenError(f"a token named {name!r} exists: revoke it first")
    taken = {r.id for r in records}
    token_id = secrets.token_hex(4)
    while token_id in taken:
        token_id = secrets.token_hex(4)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    salt = secrets.token_bytes(16)
    record = TokenRecord(token_id, name, role, salt, _hash(secret, salt), time.time(), expires)
    write_tokens(path, [*records, record])
    return f"{PREFIX}{token_id}_{secret}", record


def revoke_token(path: Path, name: str) -> TokenRecord:
    records = read_tokens(path)
    kept = [r for r in records if r.name != name]
    if len(kept) == len(records):
        raise TokenError(f"no token named {name!r}")
    write_tokens(path, kept)
    return next(r for r in records if r.name == name)


def check(records: dict[str, TokenRecord], token: str, now: float) -> TokenRecord | None:
    """The record a token belongs to, if it is valid now (one scrypt; slow on purpose)."""
    m = _TOKEN.match(token)
    if m is None:
        return None
    record = records.get(m.group(1))
    if record is None or record.expired(now):
        return None
    return record if hmac.compare_digest(_hash(m.group(2), record.salt), record.digest) else None


class TokenStore:
    """The server's view of the token file, re-read when it changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._checked = 0.0
        self.records: dict[str, TokenRecord] = {}
        self.cache = TokenCache()
        self.load()

    def load(self) -> None:
        """Read the file now (start, SIGHUP); a bad file raises TokenError and
        changes nothing. Tokens remembered by the cache stay remembered while
        their record is unchanged: a `token create` does not make every client
        pay a scrypt check again."""
        stamp = self._stat()
        records = {r.id: r for r in read_tokens(self.path)}
        self.records = records
        self._stamp = stamp
        self.cache.keep(lambda record: records.get(record.id) == record)

    def _stat(self) -> tuple[int, int, int]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return (0, 0, 0)
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def current(self, now: float) -> None:
        """Reload if the file changed (looked at once a second at most)."""
        if now - self._checked < RECHECK_S:
            return
        self._checked = now
        stamp = self._stat()
        if stamp != self._stamp:
            self.reload()
            self._stamp = stamp  # a broken file: not again until it changes

    def reload(self) -> None:
        """Read the file again (a change seen, SIGHUP). A file that cannot be read
        now (half written by hand, broken) is logged and the last good records
        are kept."""
        try:
            self.load()
        except TokenError as exc:
            log_event(
                logger,
                logging.ERROR,
                "tokens_reload_failed",
                always=True,
                error=str(exc),
                kept="the last good tokens",
            )

    def valid(self, token_id: str, now: float) -> bool:
        """Whether the token with this id still exists and has not expired (for
        connections authenticated earlier: revoked or expired, they are cut)."""
        self.current(time.monotonic())
        record = self.records.get(token_id)
        return record is not None and not record.expired(now)

    def lookup_cached(self, token: str, now: float) -> TokenRecord | None:
        """A token checked before and still valid, without scrypt."""
        self.current(time.monotonic())
        record = self.cache.get(token)
        if record is None or record.expired(now) or record.id not in self.records:
            return None
        return record

    def verify(self, token: str, now: float) -> TokenRecord | None:
        """Check a token the slow way. Call it in a thread: it reads only the
        records (replaced whole on reload, never changed in place); the caller
        remembers a valid one (`cache.put`) back on the event loop."""
        return check(self.records, token, now)


class TokenCache:
    """Tokens checked already, by a keyed digest (the token itself is not kept),
    least recently used first out; bounded."""

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self._key = secrets.token_bytes(32)
        self._entries = entries
        self._known: OrderedDict[bytes, TokenRecord] = OrderedDict()

    def key(self, token: str) -> bytes:
        """The token's keyed digest: what the cache (and the checks in flight) know it by."""
        return hmac.new(self._key, token.encode(), hashlib.sha256).digest()

    def get(self, token: str) -> TokenRecord | None:
        digest = self.key(token)
        record = self._known.get(digest)
        if record is not None:
            self._known.move_to_end(digest)
        return record

    def put(self, token: str, record: TokenRecord) -> None:
        self._known[self.key(token)] = record
        self._known.move_to_end(self.key(token))
        while len(self._known) > self._entries:
            self._known.popitem(last=False)

    def clear(self) -> None:
        self._known.clear()

    def keep(self, still: Callable[[TokenRecord], bool]) -> None:
        """Forget the entries whose record no longer holds."""
        for digest in [d for d, record in self._known.items() if not still(record)]:
            del self._known[digest]
