"""The security sections' checks at config load, and where their files live.

`config.validate` calls the checks (each raises ConfigError naming the key);
the path helpers resolve defaults under persist.dir. Kept apart from config.py
(which imports this module) so the security options have one home.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import TYPE_CHECKING

from logcaster.exceptions import ConfigError
from logcaster.metrics.registry import stats_name
from logcaster.security import redact_rules, tls
from logcaster.sinks.forward.target import parse_target

if TYPE_CHECKING:
    from logcaster.config import Config


def tokens_path(config: Config) -> Path | None:
    """Where the token hashes live (auth.tokens_file, else under persist.dir)."""
    if config.auth.tokens_file is not None:
        return Path(config.auth.tokens_file)
    if config.persist.dir is not None:
        return Path(config.persist.dir) / "security" / "tokens.json"
    return None


def audit_dir(config: Config) -> Path | None:
    """Where the audit log is written (audit.dir, else under persist.dir); None: off."""
    if config.audit.dir is not None:
        return Path(config.audit.dir)
    if config.persist.dir is not None:
        return Path(config.persist.dir) / "audit"
    return None


def check_security(config: Config) -> None:
    auth = config.auth
    for i, net in enumerate(auth.udp_networks):
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError as exc:
            raise ConfigError(f"auth.udp_networks.{i}", str(exc)) from exc
    for i, rule in enumerate(auth.certificate_roles):
        if "=" not in rule.subject:
            raise ConfigError(
                f"auth.certificate_roles.{i}.subject",
                f"{rule.subject!r} is no subject: write it as RFC 4514, e.g. CN=app1,O=Example",
            )
    if not auth.enabled:
        return
    if tokens_path(config) is None:
        raise ConfigError(
            "auth.tokens_file", "authentication needs a tokens file: set it, or persist.dir"
        )
    if audit_dir(config) is None:
        raise ConfigError(
            "audit.dir", "authentication needs an audit log: set audit.dir, or persist.dir"
        )


def check_tls(config: Config) -> None:
    """Each listener's TLS files, and each TLS forward sink's, readable and consistent."""
    for name, override in config.tls_listeners().items():
        tls.check(tls.resolve(config.tls, override, name))
    for g, group in enumerate(config.forward):
        for kind in ("primaries", "backups"):
            for i, sink in enumerate(getattr(group, kind)):
                prefix = f"forward.{g}.{kind}.{i}."
                if not parse_target(sink.url).tls:
                    for name in ("ca_file", "cert_file", "key_file"):
                        if getattr(sink, name) is not None:
                            raise ConfigError(prefix + name, "only for tls:// and https:// urls")
                    continue
                if sink.key_file is not None and sink.cert_file is None:
                    raise ConfigError(prefix + "cert_file", "a key_file needs its certificate")
                tls.check_files(
                    sink.cert_file, sink.key_file, sink.ca_file, lambda k, p=prefix: p + k
                )


# Keys the parser reads into an event's own attributes, not its fields: an
# equality query on them never reaches the field test an encrypted value needs.
_NOT_FIELDS = frozenset(
    {"ts", "time", "timestamp", "@timestamp", "message", "msg", "level", "severity", "lvl"}
    | {"loglevel", "service", "version", "host", "hostname", "pod", "source"}
)


def field_keys_path(config: Config) -> Path | None:
    """Where the field-encryption keys are (None: no keys file can be named)."""
    if config.encrypt.keys_file is not None:
        return Path(config.encrypt.keys_file)
    if config.persist.dir is not None:
        return Path(config.persist.dir) / "security" / "field-keys.json"
    return None


def check_encrypt(config: Config) -> None:
    names = config.encrypt.fields
    for i, name in enumerate(names):
        if name in _NOT_FIELDS:
            raise ConfigError(f"encrypt.fields.{i}", f"{name!r} is an event attribute, not a field")
        if name in names[:i]:
            raise ConfigError(f"encrypt.fields.{i}", f"{name!r} is named twice")
    if names and field_keys_path(config) is None:
        raise ConfigError(
            "encrypt.keys_file", "needed for encrypt.fields when persist.dir is not set"
        )


def check_redact(config: Config) -> None:
    """Every operator rule compiles now: a bad one stops the start, naming its key."""
    redact = config.redact
    try:
        marks = redact_rules.Marks(redact.marker)
    except ValueError as exc:
        raise ConfigError("redact.marker", str(exc)) from exc
    seen: dict[str, str] = {stats_name("", b): b for b in redact_rules.BUILTINS}
    for i, rule in enumerate(redact.rules):
        key = f"redact.rules.{i}"
        # Counted as Redacted<Name> in STATS: two names must not meet there.
        other = seen.get(stats_name("", rule.name))
        if other is not None:
            raise ConfigError(f"{key}.name", f"{rule.name!r} is taken by rule {other!r}")
        seen[stats_name("", rule.name)] = rule.name
        try:
            redact_rules.operator_rule(rule.name, rule.pattern, rule.replacement, marks)
        except ValueError as exc:
            field, _, reason = str(exc).partition(": ")
            raise ConfigError(f"{key}.{field}", reason) from exc
