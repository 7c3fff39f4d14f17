"""The one place every listener plugs into for security (SPEC §9).

`Security` is built once by app.py from the config; each listener asks it
for its `Guard` by name (`security.guard("ingest")`) and from then on calls
only the guard: `authenticate(token, peer)` for a presented token,
`certificate(subject, peer)` for a verified client certificate, `allow(...)`
before a privileged action, `limits` for per-client rate limits, and `udp_allowed`
for datagrams. Every decision is written to the audit log from here, so a
listener added later (IRC, the dashboard, the shippers' endpoints) gets the
same authentication, roles, audit and limits by holding a guard.

With `auth.enabled` off, every request acts as `ANONYMOUS` (admin) and only
privileged actions are audited (when the audit log is on).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import ssl
import time
from collections import OrderedDict
from dataclasses import dataclass

from logcaster.config import Config
from logcaster.exceptions import StartupError
from logcaster.log import log_event
from logcaster.metrics.registry import Readings
from logcaster.options import CertificateRole, RoleName
from logcaster.security import audit
from logcaster.security.ratelimit import FailureLimiter, RateLimits
from logcaster.security.roles import ANONYMOUS, Permission, Principal
from logcaster.security.settings import audit_dir, tokens_path
from logcaster.security.tls import TlsContexts
from logcaster.security.tokens import TokenError, TokenRecord, TokenStore

logger = logging.getLogger("logcaster.security")

# Token checks (scrypt) running at once, and waiting; past that a check fails at
# once as "busy": a flood of bad tokens cannot queue unbounded work or memory.
MAX_CHECKS = 2
MAX_WAITING_CHECKS = 64
SUMMARY_EVERY_S = 60.0  # allowed ingest requests: one audit entry per client per this


@dataclass(frozen=True, slots=True)
class Peer:
    """Where a request comes from: its address (for limits) and `address:port` (audit)."""

    address: str
    source: str

    @staticmethod
    def of(peername: object) -> Peer:
        if isinstance(peername, tuple) and len(peername) >= 2:
            return Peer(str(peername[0]), f"{peername[0]}:{peername[1]}")
        return Peer("", "local")


class Security:
    """Tokens, the audit log, rate limits and failure limits of one server."""

    def __init__(self, config: Config) -> None:
        self.enabled = config.auth.enabled
        self.tokens: TokenStore | None = None
        if self.enabled:
            path = tokens_path(config)
            assert path is not None  # config validation requires one
            try:
                self.tokens = TokenStore(path)
            except TokenError as exc:
                raise StartupError("auth.tokens_file", str(exc)) from exc
        directory = audit_dir(config)
        self.audit = audit.AuditLog(directory, config.audit) if directory is not None else None
        self.limits = RateLimits(config.rate_limit)
        # Each listener's TLS context (security/tls.py), reloaded on SIGHUP.
        self.tls = TlsContexts(config.tls, config.tls_listeners())
        self.failures = FailureLimiter(config.auth)
        self.login_timeout = config.auth.login_timeout
        self._cert_roles = config.auth.certificate_roles
        self.udp_networks = [
            ipaddress.ip_network(n, strict=False) for n in config.auth.udp_networks
        ]
        self._checks = asyncio.Semaphore(MAX_CHECKS)
        self._waiting = 0
        self._checking: dict[bytes, asyncio.Task[TokenRecord | None]] = {}
        self._quiet: OrderedDict[tuple[str, str, str], float] = OrderedDict()
        # Values of encrypted fields named in a command or path stay out of the
        # audit log (`user_id=alice` is written `user_id=<hidden>`).
        self._hidden = _hider(config.encrypt.fields)

    def start(self) -> None:
        if self.tokens is not None and not self.tokens.records:
            log_event(
                logger,
                logging.WARNING,
                "no_tokens",
                always=True,
                path=str(self.tokens.path),
                hint="authentication is on and no token exists yet: every client is "
                "refused; make one with `logcaster token create --name N --role R`",
            )
        if self.audit is not None:
            try:
                self.audit.open()
            except OSError as exc:
                raise StartupError(
                    "audit.dir",
                    f"cannot open the audit log in {self.audit.directory}: {exc.strerror}",
                ) from exc

    def close(self) -> None:
        if self.audit is not None:
            self.audit.close()

    def reload(self) -> None:
        """SIGHUP: re-read the token file now."""
        if self.tokens is not None:
            self.tokens.reload()

    def guard(self, listener: str) -> Guard:
        return Guard(self, listener)

    def readings(self, out: Readings) -> None:
        self.limits.readings(out)
        self.failures.readings(out)

    def record(
        self,
        principal: Principal | None,
        action: str,
        result: str,
        peer: Peer,
        listener: str,
        reason: str | None = None,
        detail: str | None = None,
    ) -> None:
        if self.audit is None:
            return
        who, how, role = ("unknown", "token", None)
        if principal is not None:
            who, how, role = principal.name, principal.how, principal.role
        if detail is not None and self._hidden is not None:
            detail = self._hidden.sub(r"\1=<hidden>", detail)
        self.audit.write(
            audit.entry(who, how, role, action, result, peer.source, listener, reason, detail)
        )

    def record_local(self, who: str, action: str, failure: str | None) -> None:
        """An action taken on the server's host, not over the network (SIGHUP's reload)."""
        if self.audit is None:
            return
        result = "ok" if failure is None else "failed"
        self.audit.write(
            audit.entry(who, "signal", None, action, result, "local", "signal", failure)
        )

    async def check_token(self, token: str, now: float) -> tuple[TokenRecord | None, str]:
        """A token's record the slow way (scrypt in a worker thread, at most
        MAX_CHECKS at once), shared by every request that presents the same token
        meanwhile (a fleet reconnecting after a restart costs one check, not one
        each); (None, why) when refused: "bad token", or "busy" past
        MAX_WAITING_CHECKS distinct tokens waiting."""
        tokens = self.tokens
        assert tokens is not None
        key = tokens.cache.key(token)
        pending = self._checking.get(key)
        if pending is None:
            if self._waiting >= MAX_WAITING_CHECKS:
                return None, "busy"
            pending = asyncio.get_running_loop().create_task(self._verify(token, now))
            self._checking[key] = pending
            pending.add_done_callback(lambda _: self._checking.pop(key, None))
        record = await asyncio.shield(pending)
        return record, "bad token"

    async def _verify(self, token: str, now: float) -> TokenRecord | None:
        tokens = self.tokens
        assert tokens is not None
        self._waiting += 1
        try:
            async with self._checks:
                record = await asyncio.to_thread(tokens.verify, token, now)
        finally:
            self._waiting -= 1
        if record is not None:
            tokens.cache.put(token, record)  # back on the event loop
        return record

    def role_of(self, subject: str | None) -> RoleName | None:
        """The role a verified certificate subject maps to (auth.certificate_roles)."""
        return _cert_role(self._cert_roles, subject) if subject else None

    def quiet(self, key: tuple[str, str, str]) -> bool:
        """True if `key` was recorded within SUMMARY_EVERY_S (bounded table)."""
        now = time.monotonic()
        last = self._quiet.get(key)
        if last is not None and now - last < SUMMARY_EVERY_S:
            return True
        self._quiet[key] = now
        self._quiet.move_to_end(key)
        if len(self._quiet) > 10_000:
            self._quiet.popitem(last=False)
        return False


class Guard:
    """One listener's view of `Security` (module docstring)."""

    def __init__(self, security: Security, listener: str) -> None:
        self.security = security
        self.listener = listener
        self.limits = security.limits

    @property
    def ssl(self) -> ssl.SSLContext | None:
        """The listener's TLS context; None: plain TCP."""
        return self.security.tls.server(self.listener)

    @property
    def required(self) -> bool:
        """Whether clients must authenticate."""
        return self.security.enabled

    async def authenticate(
        self, token: str | None, peer: Peer, *, record: bool = True
    ) -> Principal | None:
        """The principal a token stands for, or None (refused; audited, counted).

        With authentication off: ANONYMOUS, whatever was presented. `record`:
        audit an accepted token too (connections; per-request callers audit
        the action instead)."""
        security = self.security
        tokens = security.tokens
        if tokens is None:
            return ANONYMOUS
        if security.failures.locked(peer.address):
            self._fail(peer, "too many failures", quiet=True)
            return None
        if not token:
            self._fail(peer, "no token")
            return None
        now = time.time()
        found = tokens.lookup_cached(token, now) or await self._check(token, now, peer)
        if found is None:
            return None
        principal = Principal(found.name, found.role, "token", found.id)
        if record:
            security.record(principal, "auth", "allowed", peer, self.listener)
        return principal

    async def _check(self, token: str, now: float, peer: Peer) -> TokenRecord | None:
        """The slow check (Security.check_token); a refusal is recorded."""
        record, reason = await self.security.check_token(token, now)
        if record is None:
            self._fail(peer, reason, count=reason != "busy")
        return record

    def still_valid(self, principal: Principal) -> bool:
        """Whether a principal authenticated earlier (an open connection, a live
        tail) may go on: its token not revoked, not expired."""
        tokens = self.security.tokens
        if tokens is None or principal.token_id is None:
            return True
        return tokens.valid(principal.token_id, time.time())

    def cut(self, principal: Principal, peer: Peer) -> None:
        """A connection whose token was revoked or expired is being closed."""
        self.security.record(
            principal, "auth", "denied", peer, self.listener, "token revoked or expired"
        )

    def maps(self, subject: str | None) -> bool:
        """Whether a certificate subject maps to a role (auth.certificate_roles)."""
        return self.security.role_of(subject) is not None

    def certificate(self, subject: str | None, peer: Peer) -> Principal | None:
        """The principal a verified client certificate's subject maps to, or None."""
        if not self.security.enabled:
            return ANONYMOUS
        role = self.security.role_of(subject)
        if subject is None or role is None:
            self._fail(peer, "no certificate" if subject is None else "certificate not mapped")
            return None
        principal = Principal(subject, role, "certificate")
        self.security.record(principal, "auth", "allowed", peer, self.listener)
        return principal

    def allow(
        self,
        principal: Principal,
        permission: Permission,
        action: str,
        peer: Peer,
        detail: str | None = None,
        *,
        record: bool = True,
    ) -> bool:
        """Whether `principal` may do `action`; audited (a refusal always)."""
        allowed = principal.may(permission)
        if allowed and not record:
            return True
        reason = None if allowed else f"role {principal.role} lacks {permission.value}"
        result = "allowed" if allowed else "denied"
        self.security.record(principal, action, result, peer, self.listener, reason, detail)
        return allowed

    def summarize(self, principal: Principal, action: str, peer: Peer) -> None:
        """An allowed high-rate action (HTTP ingest): audited once a minute per client."""
        if self.security.audit is None or self.security.quiet(
            (principal.name, peer.address, action)
        ):
            return
        reason = f"further {action} requests of this client within 60 s are not recorded"
        self.security.record(principal, action, "allowed", peer, self.listener, reason)

    def refuse(self, peer: Peer, reason: str) -> None:
        """A client that presented nothing usable (no token line, no certificate)."""
        self._fail(peer, reason)

    def refuse_quietly(self, peer: Peer, reason: str) -> None:
        """A refusal that can come at a high rate from forged addresses (datagrams):
        counted each time, audited once a minute per listener and reason (per
        address, spoofed sources could flood the audit log and rotate it away)."""
        self._fail(peer, reason, quiet=True, per_address=False)

    def udp_allowed(self, address: str) -> bool:
        """Plain datagrams: with authentication on, only from auth.udp_networks."""
        if not self.security.enabled:
            return True
        try:
            ip = ipaddress.ip_address(address.partition("%")[0])
        except ValueError:
            return False
        return any(ip in net for net in self.security.udp_networks)

    def _fail(
        self,
        peer: Peer,
        reason: str,
        *,
        quiet: bool = False,
        count: bool = True,
        per_address: bool = True,
    ) -> None:
        security = self.security
        if count and not quiet:
            security.failures.failed(peer.address, self.listener, reason)
        elif quiet:
            security.failures.count(self.listener, reason)
            if security.quiet((peer.address if per_address else "*", self.listener, reason)):
                return  # recorded once a minute (per address, or per listener)
            reason += " (further ones within 60 s are counted, not recorded)"
        security.record(None, "auth", "denied", peer, self.listener, reason)


def _hider(fields: list[str]) -> re.Pattern[str] | None:
    """A pattern for `name=value` of the encrypted fields (quoted values too; in a
    URL's query, up to the next `&`)."""
    if not fields:
        return None
    names = "|".join(re.escape(name) for name in fields)
    return re.compile(rf"(?i)(?<![\w.])({names})=(?:\"[^\"]*\"|'[^']*'|[^\s&]*)")


def open_guard(listener: str) -> Guard:
    """A guard with the defaults: no authentication, no audit, no limits (for parts
    built outside a server, e.g. in tests)."""
    return Security(Config()).guard(listener)


def _cert_role(rules: list[CertificateRole], subject: str) -> RoleName | None:
    parts = [p.strip() for p in subject.split(",")]
    common = next((p for p in parts if p.upper().startswith("CN=")), None)
    for rule in rules:
        if rule.subject == subject:
            return rule.role
        if "," not in rule.subject and common is not None and rule.subject == common:
            return rule.role
    return None
