"""What a running server reads again on SIGHUP (or RELOAD): TLS files and the
field-encryption keys; and which config keys changed (app.py's `Server.reload`)."""

from __future__ import annotations

import logging

from logcaster.config import Config
from logcaster.exceptions import StartupError
from logcaster.log import log_event
from logcaster.security import keys as field_keys
from logcaster.security.fields import FieldEncryptor
from logcaster.security.reveal import FieldQueries
from logcaster.security.settings import field_keys_path
from logcaster.security.tls import TlsContexts

logger = logging.getLogger("logcaster.app")


def reload_tls(tls: TlsContexts, new: Config) -> bool:
    """Re-read every TLS listener's files (security/tls.py); False if one failed
    (it keeps its running certificate)."""
    reloaded, failed = tls.reload(new.tls, new.tls_listeners())
    for name, reason in failed.items():
        log_event(
            logger,
            logging.ERROR,
            "tls_reload_failed",
            always=True,
            listener=name,
            error=reason,
            kept="the running certificate",
        )
    if reloaded:
        log_event(logger, logging.INFO, "tls_reloaded", always=True, listeners=reloaded)
    return not failed


def reload_field_keys(
    config: Config, queries: FieldQueries | None, encryptor: FieldEncryptor | None
) -> None:
    """Read the keys file again; a bad one keeps the running keys (logged)."""
    if queries is None:
        return
    path = field_keys_path(config)
    assert path is not None
    try:
        keys = field_keys.load(path)
    except field_keys.KeyFileError as exc:
        log_event(logger, logging.ERROR, "field_keys_reload_failed", always=True, error=str(exc))
        return
    if keys.hmac_key != queries.cipher.keys.hmac_key:
        # A new index key: equality queries would miss every earlier event.
        log_event(
            logger,
            logging.ERROR,
            "field_keys_reload_failed",
            always=True,
            error=f"{path}: its HMAC key changed; restart to use it",
        )
        return
    queries.use_keys(keys)
    if encryptor is not None:
        encryptor.use_keys(keys)
    log_event(
        logger,
        logging.INFO,
        "field_keys_loaded",
        always=True,
        primary=keys.primary_id,
        keys=len(keys.keys),
    )


def load_field_keys(config: Config) -> field_keys.FieldKeys | None:
    """The field-encryption keys, created when fields are set and there is no
    file yet; None when the server holds none. StartupError naming the option."""
    if not config.encrypt.fields and config.encrypt.keys_file is None:
        return None
    path = field_keys_path(config)
    if path is None:  # config.validate refused this already
        raise StartupError("encrypt.keys_file", "not set, and there is no persist.dir")
    try:
        if not config.encrypt.fields:
            return field_keys.load(path)
        keys, created = field_keys.load_or_create(path)
    except field_keys.KeyFileError as exc:
        raise StartupError("encrypt.keys_file", str(exc)) from None
    if created:
        log_event(
            logger,
            logging.WARNING,
            "field_keys_created",
            always=True,
            path=str(path),
            advice="back this file up: without it the encrypted fields cannot be read",
        )
    return keys


def is_tls_key(dotted: str) -> bool:
    return dotted.startswith("tls.") or ".tls." in dotted


def changed_keys(old: dict[str, object], new: dict[str, object], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two config dicts."""
    keys: list[str] = []
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += changed_keys(a, b, f"{prefix}{key}.")
        elif a != b:
            keys.append(prefix + key)
    return keys
