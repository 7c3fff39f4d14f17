"""TLS for every listener and every outgoing connection (SPEC §9, docs/tls.md).

The global `tls` section holds the defaults; each listener's own `tls` section
overrides any option for it alone (`resolve`). `TlsContexts` builds the one
server `ssl.SSLContext` of each listener that has TLS on; a listener asks for
its context by name (`contexts.server("ingest")`), so a new listener gets TLS
with that one call and a `tls: TlsOverride` field in its section.

SIGHUP (`TlsContexts.reload`) loads the new certificates, keys and CAs into the
same live context objects, after building a fresh context from them first: a
bad file is reported and the running one kept. OpenSSL copies the certificate
into each connection when it starts, so open connections keep theirs and new
handshakes get the new one. (A CA removed from `ca_file` stays trusted until a
restart: OpenSSL's trust store only grows.)

Files are checked with `cryptography` before OpenSSL sees them, so each
problem is a `ConfigError` naming the key that holds the file: missing,
unreadable, not PEM, an encrypted key, a key of another certificate.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from logcaster.exceptions import ConfigError, StartupError
from logcaster.options import ClientAuth, TlsConfig, TlsOverride, TlsVersion
from logcaster.security.tls_client import VERSIONS

VERIFY: dict[str, ssl.VerifyMode] = {
    "none": ssl.CERT_NONE,
    "optional": ssl.CERT_OPTIONAL,
    "required": ssl.CERT_REQUIRED,
}
# A client has this long to finish its handshake: a connection that never does
# (a plain-text client, a stalled one) is closed, not kept.
HANDSHAKE_TIMEOUT = 10.0
FIELDS = ("enabled", "cert_file", "key_file", "ca_file", "client_auth", "min_version")


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """One listener's effective TLS options; `keys` names the config key each came
    from (`http.tls.cert_file` or `tls.cert_file`), for error messages."""

    enabled: bool = False
    cert_file: str | None = None
    key_file: str | None = None
    ca_file: str | None = None
    client_auth: ClientAuth = "none"
    min_version: TlsVersion = "1.2"
    keys: dict[str, str] = field(default_factory=dict)

    def key(self, name: str) -> str:
        return self.keys.get(name, f"tls.{name}")


def resolve(base: TlsConfig, override: TlsOverride | None, listener: str) -> TlsSettings:
    """The listener's settings: its own option where set, else the global one."""
    values: dict[str, Any] = {}
    keys: dict[str, str] = {}
    for name in FIELDS:
        own = getattr(override, name) if override is not None else None
        values[name] = own if own is not None else getattr(base, name)
        keys[name] = f"{listener}.tls.{name}" if own is not None else f"tls.{name}"
    return TlsSettings(**values, keys=keys)


def check(settings: TlsSettings) -> None:
    """Every file of an enabled listener readable, parsed and consistent; else
    ConfigError naming the key."""
    if not settings.enabled:
        return
    for name in ("cert_file", "key_file"):
        if getattr(settings, name) is None:
            raise ConfigError(settings.key(name), "TLS is enabled but no file is given")
    if settings.client_auth != "none" and settings.ca_file is None:
        raise ConfigError(
            settings.key("ca_file"),
            f"client_auth {settings.client_auth} needs the CAs that sign client certificates",
        )
    check_files(
        settings.cert_file, settings.key_file, settings.ca_file, settings.key, "the server's"
    )
    try:
        server_context(settings)
    except ssl.SSLError as exc:  # something OpenSSL refuses that cryptography took
        raise ConfigError(settings.key("cert_file"), f"OpenSSL refuses it: {exc}") from exc


def check_files(
    cert_file: str | None,
    key_file: str | None,
    ca_file: str | None,
    key: Any,
    whose: str = "the",
) -> None:
    """Check a certificate, its key and a CA bundle; `key(name)` is the config key."""
    cert = None
    if cert_file is not None:
        cert = _certificates(cert_file, key("cert_file"))[0]
    if key_file is not None:
        private = _private_key(key_file, key("key_file"))
        if cert is not None:
            spki = serialization.PublicFormat.SubjectPublicKeyInfo
            der = serialization.Encoding.DER
            if private.public_key().public_bytes(der, spki) != cert.public_key().public_bytes(
                der, spki
            ):
                raise ConfigError(
                    key("key_file"),
                    f"{key_file} is not the key of {whose} certificate {cert_file}",
                )
    elif cert_file is not None:
        raise ConfigError(key("key_file"), f"a certificate ({cert_file}) needs its key")
    if ca_file is not None:
        _certificates(ca_file, key("ca_file"))


def _read(path: str, key: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(key, f"cannot read {path}: {exc.strerror or exc}") from exc


def _certificates(path: str, key: str) -> list[x509.Certificate]:
    data = _read(path, key)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise ConfigError(key, f"{path} holds no PEM certificate ({exc})") from exc
    return certs


def _private_key(path: str, key: str) -> Any:
    data = _read(path, key)
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError as exc:  # "Password was not given but private key is encrypted"
        raise ConfigError(key, f"{path} is encrypted: give an unencrypted key") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ConfigError(key, f"{path} holds no PEM private key") from exc


def server_context(settings: TlsSettings) -> ssl.SSLContext:
    """A new server context from `settings` (ssl.SSLError or OSError if a file is bad)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _load(ctx, settings)
    return ctx


def _load(ctx: ssl.SSLContext, settings: TlsSettings) -> None:
    """Put `settings` into `ctx` (new, or live: a reload)."""
    assert settings.cert_file is not None and settings.key_file is not None
    ctx.minimum_version = VERSIONS[settings.min_version]
    ctx.load_cert_chain(settings.cert_file, settings.key_file)
    if settings.ca_file is not None:
        ctx.load_verify_locations(cafile=settings.ca_file)
    ctx.verify_mode = VERIFY[settings.client_auth]


class TlsContexts:
    """The server context of each listener with TLS on, built once at start.

    `listeners` maps a listener's name (its config section: ingest, syslog, query,
    http) to its `tls` overrides; `Config.tls_listeners()` lists them."""

    def __init__(self, base: TlsConfig, listeners: Mapping[str, TlsOverride]) -> None:
        self._settings = {name: resolve(base, tls, name) for name, tls in listeners.items()}
        self._contexts: dict[str, ssl.SSLContext] = {}
        for name, settings in self._settings.items():
            if settings.enabled:
                try:
                    check(settings)
                except ConfigError as exc:
                    raise StartupError(exc.key, exc.reason) from exc
                self._contexts[name] = server_context(settings)

    def server(self, listener: str) -> ssl.SSLContext | None:
        """The listener's context; None when it serves plain TCP."""
        return self._contexts.get(listener)

    @property
    def listeners(self) -> list[str]:
        """The listeners with TLS on, by name."""
        return sorted(self._contexts)

    def reload(
        self, base: TlsConfig, listeners: Mapping[str, TlsOverride]
    ) -> tuple[list[str], dict[str, str]]:
        """Re-read every TLS listener's files into its live context.

        Returns the listeners reloaded and, by listener, why one kept its old
        context (a fresh context from the new files failed). Turning TLS on or
        off for a listener takes a restart (`Server.reload` says so)."""
        reloaded: list[str] = []
        failed: dict[str, str] = {}
        for name, ctx in self._contexts.items():
            settings = resolve(base, listeners.get(name), name)
            if not settings.enabled:
                continue  # switched off: a restart does it; keep serving TLS
            try:
                check(settings)  # the files as they are now, in a fresh context
                _load(ctx, settings)
            except (ConfigError, ssl.SSLError, OSError) as exc:
                failed[name] = str(exc)
                continue
            self._settings[name] = settings
            reloaded.append(name)
        return reloaded, failed


def peer_subject(conn: Any) -> str | None:
    """The verified client certificate's subject, RFC 4514 (`CN=app1,O=Example`).

    `conn`: a transport or StreamWriter (anything with `get_extra_info`). None
    without TLS, without a client certificate, or when the listener asks for
    none (client_auth none: nothing was verified)."""
    ssl_object = conn.get_extra_info("ssl_object")
    if ssl_object is None or ssl_object.context.verify_mode == ssl.CERT_NONE:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    subject: str = x509.load_der_x509_certificate(der).subject.rfc4514_string()
    return subject


async def serve(
    factory: Callable[[], asyncio.BaseProtocol], host: str, port: int, ctx: ssl.SSLContext | None
) -> asyncio.Server:
    """A listening server as every listener of ours binds one: address reuse, a
    deep backlog, and with `ctx` TLS whose handshake must end in HANDSHAKE_TIMEOUT."""
    return await asyncio.get_running_loop().create_server(
        factory,
        host,
        port,
        reuse_address=True,
        backlog=1024,
        ssl=ctx,
        ssl_handshake_timeout=HANDSHAKE_TIMEOUT if ctx is not None else None,
    )
